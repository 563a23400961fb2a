#include "varflow/vi/conditioner.h"

#include <cmath>
#include <limits>

#include "varflow/core/error.h"

namespace varflow::vi {

namespace {

class DensityObjective final : public nn::TrainingObjective {
 public:
  DensityObjective(Flow& flow, const Matrix& data) : flow_(flow), data_(data) {}
  nn::ParameterSet& parameters() override { return flow_.parameters(); }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng&) override {
    const Index n = static_cast<Index>(items.size());
    Matrix x(data_.rows(), n);
    for (Index j = 0; j < n; ++j) x.col(j) = data_.col(items[static_cast<std::size_t>(j)]);
    const Vector lq = flow_.log_prob(x);
    if (!lq.allFinite()) return std::numeric_limits<double>::quiet_NaN();
    if (gradient) {
      Matrix gx;
      flow_.log_prob_backward(Vector::Constant(n, -1.0 / static_cast<double>(n)), gx, true);
    }
    return -lq.mean();
  }

 private:
  Flow& flow_;
  const Matrix& data_;
};

}  // namespace

nn::TrainingSummary fit_density(Flow& flow, const Matrix& data, const nn::TrainingOptions& options, Rng& rng,
                                const nn::ProgressCallback& progress) {
  check_size("fit_density", "data rows", data.rows(), flow.dim());
  options.validate();
  const Index n_val = std::max<Index>(1, static_cast<Index>(options.validation_fraction * static_cast<double>(data.cols())));
  check_at_least("fit_density", "data columns", data.cols(), n_val + 2);
  DensityObjective objective(flow, data);
  return nn::fit(objective, data.cols() - n_val, n_val, options, rng, progress);
}

ComposedConditional::ComposedConditional(Flow& prior, std::shared_ptr<const ObservationOperator> op, Vector y,
                                         double sigma)
    : prior_(&prior), op_(std::move(op)), y_(std::move(y)), sigma_(sigma) {
  if (!op_) throw InvalidArgument("ComposedConditional: the observation operator is null");
  check_size("ComposedConditional", "operator state size", op_->state_size(), prior.dim());
  check_size("ComposedConditional", "y", y_.size(), op_->obs_size());
  check_finite("ComposedConditional", "y", y_);
  check_positive("ComposedConditional", "sigma", sigma);
}

std::string ComposedConditional::describe() const {
  return format_message("composed-flow conditional: ", op_->name(), " of a flow prior at ", y_.size(),
                        " values, sigma = ", sigma_);
}

Matrix ComposedConditional::push(const Matrix& z) const {
  Matrix x;
  Vector lq;
  prior_->sample(z, x, lq);
  return x;
}

Vector ComposedConditional::log_density_batch(const Matrix& z, Matrix* gradient) const {
  const Index n = z.cols();
  Matrix x;
  Vector lq;
  prior_->sample(z, x, lq);
  Vector out(n);
  Matrix gx(z.rows(), n);
  const double inv_var = 1.0 / (sigma_ * sigma_);
  for (Index j = 0; j < n; ++j) {
    Vector hx, ax;
    if (!x.col(j).allFinite()) {  // the prior's map failed at this z: reported as NaN, not thrown
      out[j] = std::numeric_limits<double>::quiet_NaN();
      gx.col(j).setZero();
      continue;
    }
    op_->apply(x.col(j), hx);
    const Vector r = hx - y_;
    out[j] = -0.5 * z.col(j).squaredNorm() - 0.5 * inv_var * r.squaredNorm();
    if (gradient) {
      op_->apply_adjoint(x.col(j), -inv_var * r, ax);
      gx.col(j) = ax;
    }
  }
  if (gradient) {
    Matrix gz;
    prior_->sample_backward(gx, Vector::Zero(n), gz, false);
    *gradient = gz - z;
  }
  return out;
}

double ComposedConditional::log_density(const Vector& z, Vector* gradient) const {
  Matrix g;
  const Vector v = log_density_batch(Matrix(z), gradient ? &g : nullptr);
  if (gradient) *gradient = g.col(0);
  return v[0];
}

ElboOptions ConditionerOptions::default_elbo() {
  ElboOptions o;
  o.estimator = ElboEstimator::kForwardKl;
  o.draws = 128;
  o.steps_per_epoch = 25;
  o.training.epochs = 16;
  o.training.learning_rate = 1e-2;
  return o;
}

void ConditionerOptions::validate() const {
  elbo.validate();
  check_positive("conditioner", "sigma_start", sigma_start);
  check_at_least("conditioner", "stages", stages, 1);
  check_at_least("conditioner", "refine_epochs", refine_epochs, 0);
}

std::string ConditionerSummary::brief_report() const {
  std::string s = format_message(stages.size(), " stage(s) for ", sigmas.size(), " sigma(s)");
  if (!stages.empty()) s += format_message("; last (sigma = ", sigmas.back(), "): ", stages.back().brief_report());
  return s;
}

ConditionerSummary fit_conditioner(Flow& pre_generator, Flow& prior, const std::shared_ptr<const ObservationOperator>& op,
                                   const Vector& y, double sigma, const ConditionerOptions& options, Rng& rng,
                                   const nn::ProgressCallback& progress) {
  options.validate();
  check_positive("fit_conditioner", "sigma", sigma);
  check_size("fit_conditioner", "pre-generator dimension", pre_generator.dim(), prior.dim());
  if (options.stages > 1 && options.sigma_start < sigma) {
    throw InvalidArgument(format_message("fit_conditioner: sigma_start = ", options.sigma_start,
                                         " is below the target sigma = ", sigma));
  }
  ConditionerSummary summary;
  const Index k = options.stages;
  for (Index i = 0; i < k; ++i) {
    const double t = k == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(k - 1);
    summary.sigmas.push_back(options.sigma_start * std::pow(sigma / options.sigma_start, t));
  }
  summary.sigmas.back() = sigma;
  for (const double s : summary.sigmas) {
    const ComposedConditional target(prior, op, y, s);
    summary.stages.push_back(fit_elbo(pre_generator, target, options.elbo, rng, progress));
    if (!summary.stages.back().ok()) return summary;
  }
  if (options.refine_epochs > 0) {
    ElboOptions refine = options.elbo;
    refine.estimator = ElboEstimator::kStickingTheLanding;
    refine.training.epochs = options.refine_epochs;
    const ComposedConditional target(prior, op, y, sigma);
    summary.stages.push_back(fit_elbo(pre_generator, target, refine, rng, progress));
  }
  return summary;
}

}  // namespace varflow::vi
