// A user's plug-in model checked by the installed conformance suite.
#include <varflow/testing/conformance.h>

namespace {
// x <- 0.9 x + 0.1 x^2 componentwise: a toy nonlinear model standing in for a user's code.
class ToyModel final : public varflow::Model {
 public:
  varflow::Index state_size() const override { return 5; }
  std::string name() const override { return "toy"; }
  bool has_second_order() const override { return true; }

 protected:
  void do_step(varflow::Vector& x) const override { x = 0.9 * x + 0.1 * x.cwiseProduct(x); }
  void do_step_tangent(const varflow::Vector& x, varflow::Vector& dx) const override {
    dx = (0.9 + 0.2 * x.array()).matrix().cwiseProduct(dx);
  }
  void do_step_adjoint(const varflow::Vector& x, varflow::Vector& ax) const override {
    ax = (0.9 + 0.2 * x.array()).matrix().cwiseProduct(ax);
  }
  // d/dx [(0.9 + 0.2 x) .* a] dx = 0.2 dx .* a
  void do_step_second_order_adjoint(const varflow::Vector&, const varflow::Vector& dx, const varflow::Vector& a,
                                    varflow::Vector& out) const override {
    out = 0.2 * dx.cwiseProduct(a);
  }
};
}  // namespace

using varflow::testing::ModelConformance;
INSTANTIATE_TEST_SUITE_P(Downstream, ModelConformance,
                         ::testing::Values(varflow::testing::ModelCase{
                             "toy", [] { return std::make_shared<ToyModel>(); },
                             [](varflow::Rng& rng) { return varflow::Vector(0.1 * rng.normal_vector(5)); }}),
                         varflow::testing::CaseName());
