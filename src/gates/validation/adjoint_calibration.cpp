#include "varflow/validation/adjoint_calibration.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/communicator.h"
#include "varflow/core/error.h"

namespace varflow {

namespace {

constexpr const char* kGate = "adjoint_calibration_gate";

// Calls a callback and checks the size of its answer.
Vector call_checked(const VectorMap& f, const Vector& x, Index expected, const std::string& what) {
  Vector out = f(x);
  check_size(kGate, what, out.size(), expected);
  return out;
}

void check_operator(const JacobianOperator& j, const std::string& label) {
  if (!j.jvp || !j.vjp) {
    throw InvalidArgument(format_message(kGate, ": ", label, " has an empty ", j.jvp ? "vjp" : "jvp", " callback"));
  }
  check_at_least(kGate, label + " input_size", j.input_size, 1);
  check_at_least(kGate, label + " output_size", j.output_size, 1);
}

Vector random_unit(Index n, Rng& rng) {
  Vector v = rng.normal_vector(n);
  return v / v.norm();
}

}  // namespace

void AdjointCalibrationOptions::validate() const {
  auto fail = [](const std::string& message) { throw InvalidArgument(message); };
  if (probes < 1) return fail(format_message("AdjointCalibrationOptions: probes = ", probes, " must be >= 1"));
  if (!(probe_tolerance > 0.0) || !std::isfinite(probe_tolerance)) {
    return fail(format_message("AdjointCalibrationOptions: probe_tolerance = ", probe_tolerance,
                               " must be positive and finite"));
  }
  if (!(operator_norm_tolerance > 0.0) || !std::isfinite(operator_norm_tolerance)) {
    return fail(format_message("AdjointCalibrationOptions: operator_norm_tolerance = ", operator_norm_tolerance,
                               " must be positive and finite"));
  }
  if (power_iterations < 1) {
    return fail(format_message("AdjointCalibrationOptions: power_iterations = ", power_iterations, " must be >= 1"));
  }
  if (!(power_tolerance > 0.0 && power_tolerance < 1.0)) {
    return fail(format_message("AdjointCalibrationOptions: power_tolerance = ", power_tolerance, " outside (0, 1)"));
  }
}

std::string LinearizationCaseResult::report_text() const {
  std::ostringstream os;
  os << "TL/AD pair \"" << name << "\": " << (passed() ? "pass" : "FAIL") << "\n";
  os << "  " << report.dot_product.report() << "\n";
  const std::string taylor = report.taylor.report();
  os << "  " << taylor.substr(0, taylor.find('\n')) << "\n";
  os << "  " << report.linearity.report() << "\n";
  return os.str();
}

std::string JacobianProbeResult::report() const {
  std::ostringstream os;
  os.precision(4);
  os << "Jacobian probing \"" << name << "\": " << (passed() ? "pass" : "FAIL") << "\n";
  os << "  probes: max relative error " << max_probe_error << ", mean " << mean_probe_error << " (tolerance "
     << probe_tolerance << ") " << (probes_passed ? "pass" : "FAIL") << "\n";
  os << "  per probe:";
  for (double e : probe_errors) os << " " << e;
  os << "\n  ||J_fast - J_oracle|| / ||J_oracle|| = " << relative_operator_norm_difference << " ("
     << difference_norm.norm << " / " << oracle_norm.norm << ", power iterations " << difference_norm.iterations
     << (difference_norm.converged ? "" : " not converged") << " / " << oracle_norm.iterations
     << (oracle_norm.converged ? "" : " not converged") << "; tolerance " << operator_norm_tolerance << ") "
     << (operator_norm_passed ? "pass" : "FAIL") << "\n";
  os << "  fast jvp/vjp " << fast_dot_product.report() << "\n";
  os << "  oracle jvp/vjp " << oracle_dot_product.report() << "\n";
  return os.str();
}

bool AdjointCalibrationResult::passed() const {
  if (jacobians.empty()) return false;
  for (const auto& l : linearizations) {
    if (!l.passed()) return false;
  }
  for (const auto& j : jacobians) {
    if (!j.passed()) return false;
  }
  return true;
}

std::string AdjointCalibrationResult::report() const {
  std::ostringstream os;
  os << "adjoint calibration: " << (passed() ? "PASS" : "FAIL") << " (" << linearizations.size()
     << " TL/AD pairs, " << jacobians.size() << " Jacobian cases)\n";
  for (const auto& l : linearizations) os << l.report_text();
  for (const auto& j : jacobians) os << j.report();
  return os.str();
}

OperatorNormEstimate estimate_operator_norm(const VectorMap& apply, const VectorMap& apply_transpose, Index rows,
                                            Index cols, Rng& rng, Index max_iterations, double tolerance) {
  check_at_least("estimate_operator_norm", "rows", rows, 1);
  check_at_least("estimate_operator_norm", "cols", cols, 1);
  check_at_least("estimate_operator_norm", "max_iterations", max_iterations, 1);
  OperatorNormEstimate est;
  Vector v = random_unit(cols, rng);
  double previous = -1.0;
  for (Index it = 1; it <= max_iterations; ++it) {
    const Vector av = apply(v);
    check_size("estimate_operator_norm", "A v", av.size(), rows);
    est.iterations = it;
    est.norm = av.norm();  // ||A v|| for unit v: a lower bound of ||A||_2
    if (!std::isfinite(est.norm)) return est;
    if (est.norm == 0.0) {
      // A v = 0 for a random start: A is zero (up to a set of measure zero).
      est.converged = true;
      return est;
    }
    if (previous >= 0.0 && std::abs(est.norm - previous) <= tolerance * est.norm) {
      est.converged = true;
      return est;
    }
    previous = est.norm;
    Vector w = apply_transpose(av);
    check_size("estimate_operator_norm", "A^T w", w.size(), cols);
    const double wn = w.norm();
    if (!(wn > 0.0) || !std::isfinite(wn)) return est;
    v = w / wn;
  }
  return est;
}

LinearizationCaseResult check_linearization_case(const LinearizationCase& c, Rng& rng,
                                                 const LinearizationTolerances& tolerances) {
  if (!c.map.nonlinear || !c.map.tangent || !c.map.adjoint) {
    throw InvalidArgument(format_message(kGate, ": TL/AD pair \"", c.name, "\" has an empty callback"));
  }
  check_size(kGate, format_message("TL/AD pair \"", c.name, "\" x"), c.x.size(), c.map.input_size);
  return LinearizationCaseResult{c.name, check_linearization(c.map, c.x, rng, tolerances)};
}

JacobianProbeResult probe_jacobian(const JacobianCase& c, Rng& rng, const AdjointCalibrationOptions& options) {
  with_context(kGate, [&] { options.validate(); });
  const std::string label = format_message("Jacobian case \"", c.name, "\"");
  check_operator(c.fast, label + " fast");
  check_operator(c.oracle, label + " oracle");
  check_size(kGate, label + " fast input_size", c.fast.input_size, c.oracle.input_size);
  check_size(kGate, label + " fast output_size", c.fast.output_size, c.oracle.output_size);
  const Index m = c.oracle.input_size, n = c.oracle.output_size;

  JacobianProbeResult r;
  r.name = c.name;
  r.probe_tolerance = options.probe_tolerance;
  r.operator_norm_tolerance = options.operator_norm_tolerance;

  // Random unit probes in observation space.
  const double inf = std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (Index j = 0; j < options.probes; ++j) {
    const Vector v = random_unit(m, rng);
    const Vector jo = call_checked(c.oracle.jvp, v, n, label + " oracle jvp");
    const Vector jf = call_checked(c.fast.jvp, v, n, label + " fast jvp");
    const double denom = jo.norm(), diff = (jf - jo).norm();
    double e = denom > 0.0 ? diff / denom : (diff == 0.0 ? 0.0 : inf);
    if (!std::isfinite(e)) e = inf;  // NaN output: as bad as it gets
    r.probe_errors.push_back(e);
    r.max_probe_error = std::max(r.max_probe_error, e);
    sum += e;
  }
  r.mean_probe_error = sum / static_cast<double>(options.probes);
  r.probes_passed = r.max_probe_error < options.probe_tolerance;

  // Worst direction: power iteration on the difference and on the oracle.
  const VectorMap diff_apply = [&](const Vector& v) {
    return Vector(call_checked(c.fast.jvp, v, n, label + " fast jvp") - call_checked(c.oracle.jvp, v, n, label + " oracle jvp"));
  };
  const VectorMap diff_transpose = [&](const Vector& w) {
    return Vector(call_checked(c.fast.vjp, w, m, label + " fast vjp") - call_checked(c.oracle.vjp, w, m, label + " oracle vjp"));
  };
  r.difference_norm =
      estimate_operator_norm(diff_apply, diff_transpose, n, m, rng, options.power_iterations, options.power_tolerance);
  r.oracle_norm = estimate_operator_norm(c.oracle.jvp, c.oracle.vjp, n, m, rng, options.power_iterations,
                                         options.power_tolerance);
  r.relative_operator_norm_difference =
      r.oracle_norm.norm > 0.0 ? r.difference_norm.norm / r.oracle_norm.norm : (r.difference_norm.norm == 0.0 ? 0.0 : inf);
  if (!std::isfinite(r.relative_operator_norm_difference)) r.relative_operator_norm_difference = inf;
  r.operator_norm_passed = r.relative_operator_norm_difference < options.operator_norm_tolerance;

  // Each side's vjp is the adjoint of its jvp.
  r.fast_dot_product = dot_product_test(c.fast.jvp, c.fast.vjp, rng.normal_vector(m), rng.normal_vector(n),
                                        options.tolerances);
  r.oracle_dot_product = dot_product_test(c.oracle.jvp, c.oracle.vjp, rng.normal_vector(m), rng.normal_vector(n),
                                          options.tolerances);
  r.adjoints_passed = r.fast_dot_product.passed && r.oracle_dot_product.passed;
  return r;
}

AdjointCalibrationResult adjoint_calibration_gate(const std::vector<LinearizationCase>& linearizations,
                                                  const std::vector<JacobianCase>& jacobians, Rng& rng,
                                                  const AdjointCalibrationOptions& options) {
  with_context(kGate, [&] { options.validate(); });
  if (jacobians.empty()) {
    throw InvalidArgument(format_message(kGate, ": the list of Jacobian cases is empty (at least one event is needed)"));
  }
  AdjointCalibrationResult r;
  for (const auto& c : linearizations) r.linearizations.push_back(check_linearization_case(c, rng, options.tolerances));
  for (const auto& c : jacobians) r.jacobians.push_back(probe_jacobian(c, rng, options));
  return r;
}

namespace {

void put(RecordWriter& w, const OperatorNormEstimate& e) {
  w.put(e.norm);
  w.put(static_cast<double>(e.iterations));
  w.put(e.converged ? 1.0 : 0.0);
}
OperatorNormEstimate get_norm(RecordReader& in) {
  OperatorNormEstimate e;
  e.norm = in.get_double();
  e.iterations = static_cast<Index>(in.get_double());
  e.converged = in.get_double() != 0.0;
  return e;
}
void put(RecordWriter& w, const DotProductResult& d) {
  for (const double v : {d.lhs, d.rhs, d.relative_error, d.tolerance, d.passed ? 1.0 : 0.0}) w.put(v);
}
DotProductResult get_dot(RecordReader& in) {
  DotProductResult d;
  d.lhs = in.get_double();
  d.rhs = in.get_double();
  d.relative_error = in.get_double();
  d.tolerance = in.get_double();
  d.passed = in.get_double() != 0.0;
  return d;
}

}  // namespace

AdjointCalibrationResult adjoint_calibration_gate(const std::vector<LinearizationCase>& linearizations,
                                                  const std::vector<JacobianCase>& jacobians, Rng& rng,
                                                  const AdjointCalibrationOptions& options, const Communicator& comm) {
  with_context(kGate, [&] { options.validate(); });
  if (jacobians.empty()) {
    throw InvalidArgument(format_message(kGate, ": the list of Jacobian cases is empty (at least one event is needed)"));
  }
  AdjointCalibrationResult r;
  for (const auto& c : linearizations) r.linearizations.push_back(check_linearization_case(c, rng, options.tolerances));
  const std::uint64_t base = rng.engine()();
  bool collective = false;
  for (const auto& c : jacobians) collective = collective || c.fast.collective || c.oracle.collective;
  if (collective && comm.size() > 1) {
    // All ranks on one case at a time; every rank computes the same numbers (the collective products
    // return the same bits on every rank, the rest is replicated), so no gather is needed.
    // A failure is therefore every rank's failure too (thrown as agreed, naming the case).
    for (Index k = 0; k < static_cast<Index>(jacobians.size()); ++k) {
      const JacobianCase& c = jacobians[static_cast<std::size_t>(k)];
      const Failure failure = capture_failure([&] {
        Rng g = item_rng(base, k);
        r.jacobians.push_back(probe_jacobian(c, g, options));
      });
      if (failure.failed()) rethrow_failure(failure, format_message(kGate, ": ", c.name, ": "));
    }
    return r;
  }
  const std::vector<std::string> records = distributed_map(
      comm, static_cast<Index>(jacobians.size()), kGate,
      [&](Index k) { return jacobians[static_cast<std::size_t>(k)].name; },
      [&](Index k) {
        Rng g = item_rng(base, k);
        const JacobianProbeResult p = probe_jacobian(jacobians[static_cast<std::size_t>(k)], g, options);
        RecordWriter w;
        w.put(p.name);
        w.put(Vector(Eigen::Map<const Vector>(p.probe_errors.data(), static_cast<Index>(p.probe_errors.size()))));
        w.put(p.max_probe_error);
        w.put(p.mean_probe_error);
        put(w, p.difference_norm);
        put(w, p.oracle_norm);
        w.put(p.relative_operator_norm_difference);
        put(w, p.fast_dot_product);
        put(w, p.oracle_dot_product);
        for (const double v : {p.probe_tolerance, p.operator_norm_tolerance, p.probes_passed ? 1.0 : 0.0,
                               p.operator_norm_passed ? 1.0 : 0.0, p.adjoints_passed ? 1.0 : 0.0}) {
          w.put(v);
        }
        return w.bytes();
      });
  for (const auto& record : records) {
    RecordReader in(record);
    JacobianProbeResult p;
    p.name = in.get_string();
    const Vector errors = in.get_vector();
    p.probe_errors.assign(errors.data(), errors.data() + errors.size());
    p.max_probe_error = in.get_double();
    p.mean_probe_error = in.get_double();
    p.difference_norm = get_norm(in);
    p.oracle_norm = get_norm(in);
    p.relative_operator_norm_difference = in.get_double();
    p.fast_dot_product = get_dot(in);
    p.oracle_dot_product = get_dot(in);
    p.probe_tolerance = in.get_double();
    p.operator_norm_tolerance = in.get_double();
    p.probes_passed = in.get_double() != 0.0;
    p.operator_norm_passed = in.get_double() != 0.0;
    p.adjoints_passed = in.get_double() != 0.0;
    r.jacobians.push_back(std::move(p));
  }
  return r;
}

}  // namespace varflow
