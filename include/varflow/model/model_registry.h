#pragma once
// The model registry: name -> factory with typed options. Every command that builds a model
// (`forecast`, `simulate`, `assimilate`, `six-step`) and the cycle find it here, so a new model
// reaches all of them by one registration (design/architecture.md, "Adding a model").
//
// Built-in: lorenz96, lorenz96_two_scale, lorenz63, advection_diffusion (registered in model_registry.cpp). A program
// that links varflow may add its own with register_model() before it reads any config.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/types.h"
#include "varflow/io/options.h"
#include "varflow/model/model.h"

namespace varflow {

using ModelParameters = io::NumericValues;

struct ModelEntry {
  std::string name;                        // the config name, e.g. "lorenz96"
  std::string summary;                     // one line for --help and printed defaults
  std::vector<io::NumericOption> options;  // its parameters, in the order written to YAML
  // Builds the model from a full set of checked parameters (InvalidArgument for a combination
  // the rules cannot express, e.g. an unstable step).
  std::function<std::shared_ptr<const Model>(const ModelParameters&)> make;
  // The model's rest state (a fixed point that a small perturbation and spin-up take onto the
  // attractor), or empty when there is none; then users of the registry start from ones(n).
  std::function<Vector(const ModelParameters&)> rest_state;
  // For a multi-scale model: the number of leading state components that are the resolved (slow)
  // variables, which observations see and a reduced emulator predicts (the rest are unresolved
  // fast variables). Null: every component is resolved.
  std::function<Index(const ModelParameters&)> resolved_size;
  // For a multi-scale model: the model of the resolved variables alone, with the unresolved ones
  // and their coupling dropped, at the physics' time step (the no-closure baseline of a reduced
  // emulator). Null: none.
  std::function<std::shared_ptr<const Model>(const ModelParameters&)> truncated;
};

// Adds a model; InvalidArgument when the name is taken or the entry is incomplete. Not thread-safe:
// register at start-up.
void register_model(ModelEntry entry);
// The entry of `name`; InvalidArgument "<where>: model name = 'x' is not one of: a, b, c".
const ModelEntry& find_model(const std::string& name, const std::string& where = "config");
// Registered names, built-ins first, then in registration order.
std::vector<std::string> model_names();
// "lorenz96 (n, forcing, dt) | lorenz63 (...)": one line per model for help texts.
std::string model_catalogue(const std::string& indent = "");

// A model with its parameters: what a config's `model:` section holds.
struct ModelSpec {
  std::string name = "lorenz96";
  ModelParameters parameters = default_parameters("lorenz96");

  static ModelParameters default_parameters(const std::string& name);
  double parameter(const std::string& key) const;   // InvalidArgument naming the model and key
  std::shared_ptr<const Model> make() const;       // checks the parameters by their rules first
  // Checks every parameter by its option's rule (InvalidArgument "<where>: model.<key> = v ...").
  void check(const std::string& where) const;
  // Sets `key` (an option of this model, without "model.") from text: an integer option must be an
  // integer. InvalidArgument naming where, model.key and the value (an unknown key lists the
  // model's options). The value is checked by its rule in check(), not here.
  void set(const std::string& key, const std::string& value, const std::string& where);
  Vector rest_state() const;                        // empty when the model has none
  // The leading resolved (slow) components (ModelEntry::resolved_size); the state size when every
  // component is resolved.
  Index resolved_size() const;
  std::shared_ptr<const Model> truncated() const;  // null when the model has none
  // "  name: lorenz96\n  n: 40\n ..." with `indent` spaces before each key.
  std::string yaml(int indent) const;
  // Reads a `model:` section (name first, then the options of that model; unknown keys are errors);
  // absent keys keep `start`'s values when the name is the same, else the model's defaults.
  static ModelSpec read(io::ConfigReader& section, const ModelSpec& start);
};

}  // namespace varflow
