// The defaults of the Head interface (head.h) and the posterior mean from the sampling map.
#include "varflow/amortized/head.h"

#include <stdexcept>

#include "varflow/amortized/head_registry.h"
#include "varflow/core/error.h"

namespace varflow::amortized {

namespace {
// The registered heads that have an ability, joined by `separator` (for the messages of the
// refusals below): each is built once with the default configuration and asked. Only on error paths.
std::string heads_with(bool (Head::*ability)() const, const std::string& separator) {
  std::string out;
  for (const auto& r : head_registry()) {
    AmortizedConfig config;
    config.head = head_from_string(r.name);
    bool has = false;
    try {
      has = ((*r.make(config, 2)).*ability)();
    } catch (const InvalidArgument&) {
      // a head that needs another configuration to be built is left out of the list
    }
    if (has) out += (out.empty() ? "" : separator) + r.name;
  }
  return out;
}
}  // namespace

Vector Head::log_prob(const Matrix&, const Matrix&) {
  throw InvalidArgument(format_message("log_prob: head = ", to_string(type()),
                                       " has no tractable log-density; use sample() (or a ",
                                       heads_with(&Head::has_log_prob, " or "), " head)"));
}

GaussianMoments Head::closed_form_moments(const Vector&) {
  throw InvalidArgument(format_message("closed_form_moments: head = ", to_string(type()),
                                       " has no closed-form posterior; use sample() (or a ",
                                       heads_with(&Head::has_closed_form_moments, " or "), " head)"));
}

void Head::set_sampler(Sampler, Index) {
  throw InvalidArgument(format_message("set_sampler: head = ", to_string(type()), " has no sampler to choose (",
                                       heads_with(&Head::has_sampler, ", "), " heads only)"));
}

namespace {
// "head = <type>: <use> a head whose <quantity> a differentiable map of the context (<heads that
// can>)" when `head` lacks `ability`.
void refuse_unless(const Head& head, bool (Head::*ability)() const, const char* use, const char* quantity) {
  if ((head.*ability)()) return;
  throw InvalidArgument(format_message("head = ", to_string(head.type()), ": ", use, " a head whose ", quantity,
                                       " a differentiable map of the context (", heads_with(ability, ", "), ")"));
}
}  // namespace

void Head::check_mean_penalty_supported() const {
  refuse_unless(*this, &Head::supports_mean_penalty, "derivative-informed training (labels.pairs > 0) needs",
                "mean is");
}

double Head::loss_with_mean_penalty(const Matrix&, const Matrix&, Rng&, bool, Matrix*, const MeanPenalty&, Index) {
  check_mean_penalty_supported();
  throw std::logic_error(format_message("head = ", to_string(type()),
                                        " says it supports the mean penalty but does not implement loss_with_mean_penalty"));
}

void Head::check_variance_penalty_supported() const {
  refuse_unless(*this, &Head::supports_variance_penalty, "variance labels (labels.variance_weight > 0) need",
                "marginal variances are");
}

double Head::loss_with_moment_penalties(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                        const MeanPenalty& mean_penalty, const VariancePenalty& variance_penalty,
                                        Index draws) {
  if (!variance_penalty) return loss_with_mean_penalty(x, ctx, rng, gradient, dctx, mean_penalty, draws);
  check_variance_penalty_supported();
  throw std::logic_error(format_message("head = ", to_string(type()),
                                        " says it supports the variance penalty but does not implement loss_with_moment_penalties"));
}

Vector Head::mean(const Vector& ctx) {
  const Matrix z = mean_draws();
  return push(z, ctx.replicate(1, z.cols())).rowwise().mean();
}

Vector Head::mean_jvp(const Vector& ctx, const Vector& dctx) {
  const Matrix z = mean_draws();
  return push_jvp(z, ctx.replicate(1, z.cols()), dctx.replicate(1, z.cols())).rowwise().mean();
}

Vector Head::mean_vjp(const Vector& ctx, const Vector& a) {
  const Matrix z = mean_draws();
  const Index m = z.cols();
  return push_vjp(z, ctx.replicate(1, m), (a / static_cast<double>(m)).replicate(1, m)).rowwise().sum();
}

}  // namespace varflow::amortized
