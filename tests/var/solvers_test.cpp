// The four methods on Lorenz-63, Lorenz-96 and linear models; incremental and strong 4D-Var agree
// on the MAP of a weakly nonlinear window; numerical failures and limits are reported statuses;
// options are validated with messages naming the option.
#include <gtest/gtest.h>

#include "problems.h"
#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/laplace.h"
#include "varflow/var/least_squares_check.h"
#include "varflow/var/strong_4dvar.h"
#include "varflow/var/weak_4dvar.h"
#include "../test_messages.h"

namespace varflow {
namespace {

constexpr std::uint64_t kSeed = 4101;

struct ModelWindow {
  std::string name;
  AssimilationWindow window;        // 4D window
  AssimilationWindow single_time;   // the same background, observations at step 0 only
};

AssimilationWindow at_step_zero(const AssimilationWindow& w, Rng& rng) {
  AssimilationWindow s = w;
  s.observations.clear();
  Observations o = w.observations.front();
  o.step = 0;
  o.values = o.values + 0.1 * rng.normal_vector(o.values.size());
  s.observations.push_back(o);
  return s;
}

std::vector<ModelWindow> model_windows(Rng& rng) {
  std::vector<ModelWindow> out;
  {
    auto m = std::make_shared<Lorenz63>(0.01);
    const Vector t = test::attractor_state(*m, Vector::Constant(3, 1.0), rng, 1000);
    AssimilationWindow w = test::twin_window(m, t, rng, 40, 8, 1, 1.0, 1.0);
    out.push_back({"lorenz63", w, at_step_zero(w, rng)});
  }
  {
    auto m = std::make_shared<Lorenz96>(40, 8.0, 0.05);
    const Vector t = test::attractor_state(*m, Vector::Constant(40, 8.0), rng, 500);
    AssimilationWindow w = test::twin_window(m, t, rng, 8, 2, 2, 0.5, 1.0);
    out.push_back({"lorenz96", w, at_step_zero(w, rng)});
  }
  {
    test::LinearGaussianProblem p = test::linear_gaussian_problem(rng, 10, 6, {2, 4, 6}, {3, 3, 3});
    out.push_back({"linear_dense", p.window, at_step_zero(p.window, rng)});
  }
  {
    auto m = std::make_shared<AdvectionDiffusion1D>(32, 1.0, 0.1, 0.5, 1.0);
    Vector t(32);
    for (Index i = 0; i < 32; ++i) t[i] = std::sin(2.0 * M_PI * static_cast<double>(i) / 32.0);
    AssimilationWindow w = test::twin_window(m, t, rng, 10, 5, 3, 0.5, 0.2);
    w.b = std::make_shared<PeriodicGaussianCovariance>(32, 0.25, 3.0, 1.0, 0.01);
    out.push_back({"advection_diffusion", w, at_step_zero(w, rng)});
  }
  return out;
}

// Deterministic properties of any converged Laplace analysis: converged status, cost decrease,
// posterior variances below the prior ones (P <= B in the Loewner order), finite final state.
void expect_sound(const VarResult& r, const SolverSummary& s, const AssimilationWindow& w, const std::string& what) {
  EXPECT_TRUE(s.converged()) << what << "\n" << s.FullReport();
  EXPECT_LT(s.final_cost, s.initial_cost) << what;
  EXPECT_LT(s.final_gradient_norm, 1e-6 * s.initial_gradient_norm) << what;
  ASSERT_TRUE(r.posterior) << what << ": " << s.posterior_message;
  const Vector prior_var = w.b->dense().diagonal();
  const Vector post_var = r.posterior->marginal_std().array().square();
  EXPECT_TRUE((post_var.array() <= prior_var.array() * (1.0 + 1e-10)).all()) << what;
  EXPECT_TRUE((post_var.array() > 0.0).all()) << what;
  EXPECT_EQ(r.final_state.size(), w.state_size());
  EXPECT_TRUE(r.final_state.allFinite()) << what;
  EXPECT_GT(s.num_ad_sweeps, 0);
  EXPECT_GE(s.wall_time_seconds, 0.0);
}

TEST(Solvers, AllFourMethodsRunOnLorenz63Lorenz96AndLinearModels) {
  Rng rng = testing::seeded_rng(kSeed);
  for (const ModelWindow& mw : model_windows(rng)) {
    const Index n = mw.window.state_size();
    SolverSummary s;
    StrongFourDVar::Options so;
    so.gradient_tolerance = 1e-8;
    VarResult r = StrongFourDVar(so).solve(mw.window, &s);
    expect_sound(r, s, mw.window, mw.name + "/strong");
    r = IncrementalFourDVar().solve(mw.window, &s);
    expect_sound(r, s, mw.window, mw.name + "/incremental");
    WeakFourDVar::Options wo;
    wo.subwindow_steps = 2;
    r = WeakFourDVar(std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, 0.01)), wo)
            .solve(mw.window, &s);
    expect_sound(r, s, mw.window, mw.name + "/weak");
    EXPECT_EQ(r.control.size(), n * (1 + (mw.window.steps + 1) / 2));
    r = ThreeDVar().solve(mw.single_time, &s);
    expect_sound(r, s, mw.single_time, mw.name + "/3dvar");
  }
}

TEST(Solvers, IncrementalAndStrongAgreeOnTheMapOfAWeaklyNonlinearLorenz96Window) {
  Rng rng = testing::seeded_rng(kSeed + 1);
  auto m = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  const Vector t = test::attractor_state(*m, Vector::Constant(40, 8.0), rng, 500);
  // Short window (4 steps = 0.2 time units), every variable observed every step.
  const AssimilationWindow w = test::twin_window(m, t, rng, 4, 1, 1, 0.5, 0.5);
  StrongFourDVar::Options so;
  so.gradient_tolerance = 1e-12;
  IncrementalFourDVar::Options io;
  io.gradient_tolerance = 1e-12;
  io.inner_tolerance = 1e-12;
  SolverSummary ss, is;
  const VarResult strong = StrongFourDVar(so).solve(w, &ss);
  const VarResult incremental = IncrementalFourDVar(io).solve(w, &is);
  ASSERT_TRUE(ss.converged()) << ss.FullReport();
  ASSERT_TRUE(is.converged()) << is.FullReport();
  const double diff = test::relative_error(incremental.analysis, strong.analysis);
  std::cout << "[ measured ] MAP |x_incr - x_strong| / |x_strong| = " << diff << "; " << ss.BriefReport() << "; "
            << is.BriefReport() << "\n";
  EXPECT_LT(diff, 1e-8);
  EXPECT_NEAR(is.final_cost, ss.final_cost, 1e-10 * ss.final_cost);
  // More than one outer loop: the problem is nonlinear.
  EXPECT_GT(is.outer_iterations, 1);
}

// A 16-step Lorenz-96 window observed only at its end (DAPPER's Var4D at lag 4): the departures are
// large and Gauss-Newton converges linearly (measured ~0.3 per outer loop); the Newton outer loop
// (full Hessian by second-order adjoints) converges quadratically to the same MAP as L-BFGS.
TEST(Solvers, NewtonOuterLoopsConvergeOnALongWindowWhereGaussNewtonIsLinear) {
  Rng rng = testing::seeded_rng(kSeed + 7);
  auto m = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  const Vector t = test::attractor_state(*m, Vector::Constant(40, 8.0), rng, 500);
  AssimilationWindow w = test::twin_window(m, t, rng, 16, 16, 1, 0.5, 1.0);
  std::erase_if(w.observations, [](const Observations& o) { return o.step != 16; });
  ASSERT_EQ(w.observations.size(), 1u);
  StrongFourDVar::Options so;
  so.gradient_tolerance = 1e-12;
  IncrementalFourDVar::Options gn;
  gn.gradient_tolerance = 1e-8;
  gn.inner_tolerance = 1e-10;
  gn.max_outer_iterations = 40;
  gn.posterior = PosteriorMethod::kNone;
  IncrementalFourDVar::Options newton = gn;
  newton.hessian = OuterHessian::kNewton;
  SolverSummary ss, gs, ns;
  const VarResult strong = StrongFourDVar(so).solve(w, &ss);
  const VarResult a_gn = IncrementalFourDVar(gn).solve(w, &gs);
  const VarResult a_newton = IncrementalFourDVar(newton).solve(w, &ns);
  std::cout << "[ measured ] 16-step window: Gauss-Newton " << gs.outer_iterations << " outer loops, Newton "
            << ns.outer_iterations << " (" << ns.newton_fallbacks << " Gauss-Newton fallbacks); " << gs.BriefReport()
            << "; " << ns.BriefReport() << "\n";
  ASSERT_TRUE(ss.converged()) << ss.FullReport();
  ASSERT_TRUE(ns.converged()) << ns.FullReport();
  EXPECT_LT(test::relative_error(a_newton.analysis, strong.analysis), 1e-7);
  EXPECT_LE(ns.outer_iterations, 12);  // measured 10, four of them Gauss-Newton fallbacks far from the MAP
  EXPECT_GT(gs.outer_iterations, 2 * ns.outer_iterations);
  // The posterior of a Newton run comes from the Gauss-Newton Hessian at the MAP (low-rank path).
  newton.posterior = PosteriorMethod::kInnerLanczos;
  newton.posterior_lanczos_vectors = 40;
  SolverSummary ps;
  const VarResult with_posterior = IncrementalFourDVar(newton).solve(w, &ps);
  ASSERT_TRUE(with_posterior.posterior) << ps.FullReport();
  EXPECT_EQ(ps.posterior_rank, 40);
  EXPECT_LT(test::relative_error(with_posterior.posterior->covariance()->dense(),
                                 laplace_covariance_dense(*with_posterior.map)->dense()),
            1e-8);
}

// A model whose step is the identity but whose tangent and adjoint produce NaN.
class BrokenLinearization final : public Model {
 public:
  Index state_size() const override { return 4; }
  std::string name() const override { return "broken_linearization"; }

 protected:
  void do_step(Vector&) const override {}
  void do_step_tangent(const Vector&, Vector& dx) const override { dx.setConstant(std::nan("")); }
  void do_step_adjoint(const Vector&, Vector& ax) const override { ax.setConstant(std::nan("")); }
};

AssimilationWindow broken_window(std::shared_ptr<const Model> model, Index n) {
  AssimilationWindow w;
  w.model = std::move(model);
  w.steps = 3;
  w.background = Vector::Ones(n);
  w.b = std::make_shared<DiagonalCovariance>(Vector::Ones(n));
  Observations o;
  o.step = 3;
  o.values = Vector::Zero(n);
  o.op = std::make_shared<IdentityObservation>(n);
  o.r = std::make_shared<DiagonalCovariance>(Vector::Ones(n));
  w.observations.push_back(o);
  return w;
}

TEST(Solvers, NewtonOuterLoopsRefuseAModelWithoutSecondOrderAdjoints) {
  IncrementalFourDVar::Options o;
  o.hessian = OuterHessian::kNewton;
  try {
    IncrementalFourDVar(o).solve(broken_window(std::make_shared<BrokenLinearization>(), 4));
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("broken_linearization"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hessian = newton"), std::string::npos) << e.what();
  }
  OuterHessian h = OuterHessian::kGaussNewton;
  EXPECT_TRUE(outer_hessian_from_string("newton", &h));
  EXPECT_EQ(h, OuterHessian::kNewton);
  EXPECT_FALSE(outer_hessian_from_string("full", &h));
  EXPECT_EQ(to_string(OuterHessian::kGaussNewton), "gauss_newton");
}

TEST(Solvers, NumericalFailureIsAReportedStatusNotACrash) {
  auto q = std::make_shared<DiagonalCovariance>(Vector::Ones(4));
  // NaN in the tangent-linear and adjoint sweeps.
  const AssimilationWindow nan_window = broken_window(std::make_shared<BrokenLinearization>(), 4);
  // An overflowing trajectory from the background.
  const AssimilationWindow inf_window =
      broken_window(std::make_shared<LinearModel>(Matrix(Matrix::Identity(4, 4) * 1e200)), 4);
  for (const AssimilationWindow* w : {&nan_window, &inf_window}) {
    SolverSummary s;
    VarResult r;
    EXPECT_NO_THROW(r = StrongFourDVar().solve(*w, &s));
    EXPECT_EQ(s.termination_type, TerminationType::kNumericalFailure) << s.FullReport();
    EXPECT_FALSE(s.message.empty());
    EXPECT_NO_THROW(r = IncrementalFourDVar().solve(*w, &s));
    EXPECT_EQ(s.termination_type, TerminationType::kNumericalFailure) << s.FullReport();
    EXPECT_TRUE(r.analysis.allFinite());
    EXPECT_NO_THROW(r = WeakFourDVar(q).solve(*w, &s));
    EXPECT_EQ(s.termination_type, TerminationType::kNumericalFailure) << s.FullReport();
  }
}

TEST(Solvers, IterationLimitsAreReportedAsNoConvergence) {
  Rng rng = testing::seeded_rng(kSeed + 2);
  const std::vector<ModelWindow> mws = model_windows(rng);
  const AssimilationWindow& w = mws[1].window;  // Lorenz-96
  StrongFourDVar::Options so;
  so.max_iterations = 2;
  SolverSummary s;
  VarResult r = StrongFourDVar(so).solve(w, &s);
  EXPECT_EQ(s.termination_type, TerminationType::kNoConvergence) << s.FullReport();
  EXPECT_EQ(s.iterations, 2);
  EXPECT_TRUE(r.posterior);  // the posterior is still formed at the last iterate
  IncrementalFourDVar::Options io;
  io.max_outer_iterations = 1;
  io.max_inner_iterations = 2;
  r = IncrementalFourDVar(io).solve(w, &s);
  EXPECT_EQ(s.termination_type, TerminationType::kNoConvergence) << s.FullReport();
  EXPECT_EQ(s.iterations, 2);
  EXPECT_EQ(s.outer_iterations, 1);
  EXPECT_LT(s.final_cost, s.initial_cost);
}

template <typename Options>
void expect_invalid(const Options& o, const std::string& fragment) {
  std::string error;
  error = test::message_of([&] { o.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find(fragment), std::string::npos) << error;
}

TEST(Solvers, OptionsAreValidatedNamingTheOptionAndValue) {
  StrongFourDVar::Options so;
  std::string error;
  EXPECT_NO_THROW(so.validate());
  so.max_iterations = 0;
  expect_invalid(so, "max_iterations = 0 must be at least 1");
  EXPECT_THROW(StrongFourDVar{so}, InvalidArgument);
  so = {};
  so.posterior = PosteriorMethod::kInnerLanczos;
  expect_invalid(so, "inner_lanczos");
  so = {};
  so.posterior = PosteriorMethod::kLowRank;
  so.low_rank.rank = 0;
  expect_invalid(so, "low_rank.rank = 0");
  IncrementalFourDVar::Options io;
  io.inner_tolerance = 2.0;
  expect_invalid(io, "inner_tolerance = 2");
  EXPECT_THROW(IncrementalFourDVar{io}, InvalidArgument);
  io = {};
  io.max_outer_iterations = -3;
  expect_invalid(io, "max_outer_iterations = -3");
  WeakFourDVar::Options wo;
  wo.subwindow_steps = 0;
  expect_invalid(wo, "subwindow_steps = 0");
  EXPECT_THROW(WeakFourDVar(nullptr), InvalidArgument);
  try {
    IncrementalFourDVar{io};
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("IncrementalFourDVar: options.max_outer_iterations"), std::string::npos)
        << e.what();
  }
}

TEST(Solvers, EnumNamesRoundTrip) {
  for (TerminationType t :
       {TerminationType::kConverged, TerminationType::kNoConvergence, TerminationType::kNumericalFailure}) {
    TerminationType back = TerminationType::kConverged;
    EXPECT_TRUE(termination_type_from_string(to_string(t), &back));
    EXPECT_EQ(back, t);
  }
  for (PosteriorMethod m : {PosteriorMethod::kNone, PosteriorMethod::kInnerLanczos, PosteriorMethod::kDense,
                            PosteriorMethod::kLowRank}) {
    PosteriorMethod back = PosteriorMethod::kNone;
    EXPECT_TRUE(posterior_method_from_string(to_string(m), &back));
    EXPECT_EQ(back, m);
  }
  TerminationType t = TerminationType::kConverged;
  EXPECT_FALSE(termination_type_from_string("bogus", &t));
  EXPECT_EQ(t, TerminationType::kConverged);
}

}  // namespace
}  // namespace varflow

namespace varflow {
namespace {

TEST(LeastSquaresCheck, CeresLevenbergMarquardtAgreesWithTheLanczosMaps) {
  Rng rng = testing::seeded_rng(kSeed + 3);
  auto m = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  const Vector t = test::attractor_state(*m, Vector::Constant(40, 8.0), rng, 500);
  const AssimilationWindow w = test::twin_window(m, t, rng, 4, 2, 1, 0.5, 0.5);
  const LeastSquaresCheckResult ls = solve_least_squares_check(FourDVarCost(w));
  ASSERT_TRUE(ls.converged) << ls.message;
  IncrementalFourDVar::Options io;
  io.gradient_tolerance = 1e-12;
  io.inner_tolerance = 1e-12;
  SolverSummary s;
  const VarResult incremental = IncrementalFourDVar(io).solve(w, &s);
  ASSERT_TRUE(s.converged()) << s.FullReport();
  const double diff = test::relative_error(incremental.analysis, ls.control);
  std::cout << "[ measured ] incremental vs Ceres least-squares MAP: " << diff << " (" << ls.iterations
            << " LM iterations)\n";
  EXPECT_LT(diff, 1e-8);
  EXPECT_NEAR(s.final_cost, ls.final_cost, 1e-10 * ls.final_cost);
  // Weak constraint on Lorenz-63 against WeakFourDVar.
  auto m63 = std::make_shared<Lorenz63>(0.01);
  const Vector t63 = test::attractor_state(*m63, Vector::Constant(3, 1.0), rng, 1000);
  const AssimilationWindow w63 = test::twin_window(m63, t63, rng, 20, 5, 1, 1.0, 1.0);
  auto q = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(3, 0.01));
  const LeastSquaresCheckResult lsw = solve_least_squares_check(FourDVarCost(w63, q, 5));
  WeakFourDVar::Options wo;
  wo.subwindow_steps = 5;
  wo.gradient_tolerance = 1e-12;
  wo.inner_tolerance = 1e-12;
  const VarResult weak = WeakFourDVar(q, wo).solve(w63, &s);
  ASSERT_TRUE(lsw.converged && s.converged()) << lsw.message << "\n" << s.FullReport();
  const double weak_diff = test::relative_error(weak.control, lsw.control);
  std::cout << "[ measured ] weak 4D-Var vs Ceres least-squares MAP (Lorenz-63): " << weak_diff << "\n";
  EXPECT_LT(weak_diff, 1e-8);
}

}  // namespace
}  // namespace varflow
