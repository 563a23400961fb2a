#include "varflow/model/model_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/core/limits.h"
#include "varflow/core/registry.h"
#include "varflow/model/linear_model.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/lorenz96_two_scale.h"

namespace varflow {

namespace {

using io::NumericOption;
using Rule = NumericOption::Rule;

std::vector<ModelEntry> builtin_models() {
  std::vector<ModelEntry> m;
  m.push_back({"lorenz96", "Lorenz (1996) single-scale model on a periodic ring, RK4",
               {NumericOption::state_size("n", 40, 4, "number of variables"),
                NumericOption::real("forcing", 8.0, Rule::kFinite, "forcing F"),
                NumericOption::real("dt", 0.05, Rule::kPositive, "time step (0.05 = 6 h)")},
               [](const ModelParameters& p) {
                 return std::make_shared<Lorenz96>(static_cast<Index>(p.at("n")), p.at("forcing"), p.at("dt"));
               },
               [](const ModelParameters& p) {
                 return Vector(Vector::Constant(static_cast<Index>(p.at("n")), p.at("forcing")));
               },
               nullptr, nullptr});
  // Defaults: Arnold et al. 2013 / Gagne et al. 2020. Rasp 2020: k: 36, j: 10, forcing: 10.
  m.push_back({"lorenz96_two_scale",
               "Lorenz (1996) two-scale model: k slow variables, j fast ones each, RK4 (defaults: Arnold et al. 2013; "
               "Rasp 2020: k 36, j 10, forcing 10)",
               {NumericOption::state_size("k", 8, 4, "slow variables K"),
                NumericOption::state_size("j", 32, 1, "fast variables J per slow variable"),
                NumericOption::real("forcing", 20.0, Rule::kFinite, "forcing F of the slow variables"),
                NumericOption::real("h", 1.0, Rule::kFinite, "coupling constant h"),
                NumericOption::real("b", 10.0, Rule::kPositive, "spatial-scale ratio b"),
                NumericOption::real("c", 10.0, Rule::kPositive, "time-scale ratio c"),
                NumericOption::real("dt", 0.0025, Rule::kPositive, "time step (must resolve the fast scale)")},
               [](const ModelParameters& p) {
                 // The state holds k slow and k x j fast variables.
                 const double state = p.at("k") * (p.at("j") + 1.0);
                 limits::check_at_most("config", "model.k x (model.j + 1)", static_cast<long long>(state),
                                       limits::kMaxStateSize,
                                       "the state size; one state would take " + limits::bytes_text(8.0 * state));
                 TwoScaleLorenz96Parameters q;
                 q.k = static_cast<Index>(p.at("k"));
                 q.j = static_cast<Index>(p.at("j"));
                 q.forcing = p.at("forcing");
                 q.h = p.at("h");
                 q.b = p.at("b");
                 q.c = p.at("c");
                 q.dt = p.at("dt");
                 return std::make_shared<TwoScaleLorenz96>(q);
               },
               nullptr,
               [](const ModelParameters& p) { return static_cast<Index>(p.at("k")); },
               [](const ModelParameters& p) -> std::shared_ptr<const Model> {
                 return std::make_shared<Lorenz96>(static_cast<Index>(p.at("k")), p.at("forcing"), p.at("dt"));
               }});
  m.push_back({"lorenz63", "Lorenz (1963) three-variable model, RK4",
               {NumericOption::real("sigma", 10.0, Rule::kFinite, "Prandtl number sigma"),
                NumericOption::real("rho", 28.0, Rule::kFinite, "Rayleigh number rho"),
                NumericOption::real("beta", 8.0 / 3.0, Rule::kFinite, "geometric factor beta"),
                NumericOption::real("dt", 0.01, Rule::kPositive, "time step")},
               [](const ModelParameters& p) {
                 return std::make_shared<Lorenz63>(p.at("dt"), p.at("sigma"), p.at("rho"), p.at("beta"));
               },
               nullptr, nullptr, nullptr});
  m.push_back({"advection_diffusion",
               "1-D periodic advection-diffusion (upwind advection, centred diffusion, explicit Euler)",
               {NumericOption::state_size("n", 40, 3, "number of grid points"),
                NumericOption::real("velocity", 1.0, Rule::kFinite, "advection velocity c (grid units per time)"),
                NumericOption::real("diffusivity", 0.1, Rule::kNonNegative, "diffusivity kappa"),
                NumericOption::real("ds", 1.0, Rule::kPositive, "grid spacing"),
                NumericOption::real("dt", 0.05, Rule::kPositive, "time step")},
               [](const ModelParameters& p) {
                 return std::make_shared<AdvectionDiffusion1D>(static_cast<Index>(p.at("n")), p.at("velocity"),
                                                               p.at("diffusivity"), p.at("dt"), p.at("ds"));
               },
               nullptr, nullptr, nullptr});
  return m;
}

Registry<ModelEntry>& registry() {
  static Registry<ModelEntry> models("model name", builtin_models());
  return models;
}

}  // namespace

void register_model(ModelEntry entry) {
  if (!entry.make) throw InvalidArgument(format_message("register_model: model ", entry.name, " has no factory"));
  registry().add(std::move(entry), "register_model");
}

const ModelEntry& find_model(const std::string& name, const std::string& where) { return registry().get(name, where); }

std::vector<std::string> model_names() { return registry().names(); }

std::string model_catalogue(const std::string& indent) {
  std::ostringstream os;
  for (const auto& e : registry()) {
    os << indent << e.name << " (";
    for (std::size_t i = 0; i < e.options.size(); ++i) os << (i ? ", " : "") << e.options[i].key;
    os << "): " << e.summary << "\n";
  }
  return os.str();
}

ModelParameters ModelSpec::default_parameters(const std::string& name) {
  return io::default_values(find_model(name).options);
}

double ModelSpec::parameter(const std::string& key) const { return io::value_of(parameters, key, "model " + name); }

std::shared_ptr<const Model> ModelSpec::make() const {
  check("config");
  return find_model(name).make(parameters);
}

void ModelSpec::check(const std::string& where) const {
  for (const auto& o : find_model(name).options) io::check_value(o, parameter(o.key), "model." + o.key, where);
}

void ModelSpec::set(const std::string& key, const std::string& value, const std::string& where) {
  const ModelEntry& e = find_model(name, where);
  const auto option = std::find_if(e.options.begin(), e.options.end(), [&](const auto& o) { return o.key == key; });
  if (option == e.options.end()) {
    std::string keys;
    for (const auto& o : e.options) keys += (keys.empty() ? "" : ", ") + o.key;
    throw InvalidArgument(format_message(where, ": unknown key 'model.", key, "': model ", name, " has ", keys));
  }
  double v = 0.0;
  const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
  const bool whole = r.ec == std::errc() && r.ptr == value.data() + value.size();
  if (!whole || (option->kind == io::NumericOption::Kind::kInteger && v != std::floor(v))) {
    throw InvalidArgument(format_message(where, ": model.", key, " = '", value, "' is not ",
                                         option->kind == io::NumericOption::Kind::kInteger ? "an integer" : "a number"));
  }
  parameters[key] = v;
}

Vector ModelSpec::rest_state() const {
  const ModelEntry& e = find_model(name);
  return e.rest_state ? e.rest_state(parameters) : Vector();
}

std::shared_ptr<const Model> ModelSpec::truncated() const {
  const ModelEntry& e = find_model(name);
  return e.truncated ? e.truncated(parameters) : nullptr;
}

Index ModelSpec::resolved_size() const {
  const ModelEntry& e = find_model(name);
  return e.resolved_size ? e.resolved_size(parameters) : make()->state_size();
}

std::string ModelSpec::yaml(int indent) const {
  return std::string(static_cast<std::size_t>(indent), ' ') + "name: " + name + "\n" +
         io::values_yaml(find_model(name).options, parameters, indent);
}

ModelSpec ModelSpec::read(io::ConfigReader& section, const ModelSpec& start) {
  ModelSpec s;
  s.name = section.choice("name", start.name, model_names());
  // Parameters carry over from `start` only for the same model.
  s.parameters = io::read_values(section, find_model(s.name).options,
                                 s.name == start.name ? start.parameters : ModelParameters{});
  return s;
}

}  // namespace varflow
