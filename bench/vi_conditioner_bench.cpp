// The composed-flow conditioner (vi/conditioner.h) on two-moons: a spline MAF prior trained on prior
// draws, conditioned on x1 + x2 = 0 (sigma 0.1) by an IAF pre-generator with each gradient (reverse KL:
// reparameterised, STL; forward KL) with and without annealing sigma, and forward KL followed by an
// STL refinement, against the importance-weighted
// reference of the same smoothed conditional (2 10^5 prior-flow draws). Prints one row per method:
// upper-moon share, mean, sd, ELBO, IS effective fraction and seconds.
//   varflow_vi_conditioner_bench [--seed S] [--prior-draws N] [--prior-epochs E] [--epochs E]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "varflow/amortized/problems.h"
#include "varflow/core/stopwatch.h"
#include "varflow/nn/trainer.h"
#include "varflow/obs/operators.h"
#include "varflow/vi/conditioner.h"

using namespace varflow;
using namespace varflow::vi;

namespace {

struct MoonFigures {
  double upper = 0.0;
  Vector mean, sd;
};
MoonFigures figures(const Matrix& x, const Vector& weights) {
  MoonFigures f;
  const Vector w = weights / weights.sum();
  f.mean = x * w;
  f.sd = ((x.colwise() - f.mean).array().square().matrix() * w).cwiseSqrt();
  for (Index j = 0; j < x.cols(); ++j) {
    if (amortized::TwoMoons::distance_to_moon(x.col(j), 0) < amortized::TwoMoons::distance_to_moon(x.col(j), 1)) f.upper += w[j];
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 20261205;
  Index prior_draws = 6000, prior_epochs = 12, epochs = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--prior-draws")) prior_draws = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--prior-epochs")) prior_epochs = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::atol(argv[i + 1]);
  }
  nn::set_thread_count(1);
  Rng rng(seed);
  FlowSpec prior_spec;
  prior_spec.direction = FlowDirection::kMaf;
  prior_spec.layers = 4;
  prior_spec.autoregressive.hidden = {32, 32};
  auto prior = make_flow(2, prior_spec);
  prior->initialize(rng);
  nn::TrainingOptions t;
  t.epochs = prior_epochs;
  t.batch_size = 128;
  t.learning_rate = 5e-3;
  t.schedule = nn::LearningRateSchedule::kCosine;
  t.patience = 0;
  Stopwatch sw;
  const nn::TrainingSummary ps = fit_density(*prior, amortized::TwoMoons::sample_prior(prior_draws, rng), t, rng);
  std::printf("prior: %s (%.1f s)\n", ps.brief_report().c_str(), sw.seconds());
  Matrix h(1, 2);
  h << 1.0, 1.0;
  const auto op = std::make_shared<LinearObservation>(h);
  const Vector y = Vector::Zero(1);
  const double sigma = 0.1;
  const ComposedConditional target(*prior, op, y, sigma);
  Matrix z(2, 200000);
  for (Index j = 0; j < z.cols(); ++j) z.col(j) = rng.normal_vector(2);
  const Matrix xr = target.push(z);
  Vector w(xr.cols());
  for (Index j = 0; j < xr.cols(); ++j) w[j] = std::exp(-0.5 * std::pow(xr(0, j) + xr(1, j) - y[0], 2) / (sigma * sigma));
  const MoonFigures ref = figures(xr, w);
  std::printf("reference: upper %.3f mean (%.3f, %.3f) sd (%.3f, %.3f); IS effective size %.0f\n", ref.upper,
              ref.mean[0], ref.mean[1], ref.sd[0], ref.sd[1], w.sum() * w.sum() / w.squaredNorm());
  std::printf("%-28s %6s %16s %16s %9s %6s %6s\n", "method", "upper", "mean", "sd", "ELBO", "ESS", "s");
  struct Method {
    std::string name;
    ElboEstimator estimator;
    Index stages;
    Index refine_epochs = 0;
  };
  for (const Method& m : {Method{"reparameterised", ElboEstimator::kReparameterised, 1},
                          Method{"stl", ElboEstimator::kStickingTheLanding, 1},
                          Method{"stl, annealed", ElboEstimator::kStickingTheLanding, 4},
                          Method{"forward-kl", ElboEstimator::kForwardKl, 1},
                          Method{"forward-kl, annealed", ElboEstimator::kForwardKl, 4},
                          Method{"forward-kl + stl refinement", ElboEstimator::kForwardKl, 1, epochs}}) {
    Rng r(seed + 1);
    FlowSpec spec;
    spec.direction = FlowDirection::kIaf;
    spec.layers = 3;
    auto q = make_flow(2, spec);
    q->initialize(r);
    ConditionerOptions o;
    o.elbo.estimator = m.estimator;
    o.elbo.training.epochs = m.stages == 1 ? epochs * 4 : epochs;
    o.stages = m.stages;
    o.sigma_start = m.stages == 1 ? sigma : 1.0;
    o.refine_epochs = m.refine_epochs;
    Stopwatch s;
    const ConditionerSummary cs = fit_conditioner(*q, *prior, op, y, sigma, o, r);
    const double secs = s.seconds();
    if (!cs.ok()) {
      std::printf("%-28s failed: %s\n", m.name.c_str(), cs.brief_report().c_str());
      continue;
    }
    const Matrix x = target.push(sample_flow(*q, 20000, r));
    const MoonFigures f = figures(x, Vector::Ones(x.cols()));
    std::printf("%-28s %6.3f (%6.3f, %6.3f) (%6.3f, %6.3f) %9.4f %6.3f %6.1f\n", m.name.c_str(), f.upper, f.mean[0],
                f.mean[1], f.sd[0], f.sd[1], cs.evaluation().elbo, cs.evaluation().ess_fraction, secs);
    std::fflush(stdout);
  }
  return 0;
}
