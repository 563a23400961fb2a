#pragma once
// The head registry: every head of an amortized posterior by name, with its factory, the check of
// the configuration keys it reads and its tuning of the built-in problems' defaults. Configuration
// parsing (head_from_string), `varflow train --head`, model files and default_setup() ask it.
//
// Adding a head takes its header and source file (src/learned/amortized/<name>_head.cpp, picked up
// by the build) and one registration line in src/learned/amortized/head_registry.cpp; a head outside
// the library registers itself at start-up with register_head() (worked example:
// design/architecture.md, "Adding a head").
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "varflow/amortized/config.h"
#include "varflow/core/registry.h"
#include "varflow/core/types.h"

namespace varflow::amortized {

class Head;

// A configuration key of a head's own, "<head>.<field>", for heads whose options are not among the
// built-in ones (FlowOptions, ScoreOptions, GaussianOptions): kept as canonical text in
// AmortizedConfig::head_options, written to config_text() and model files of the head's own models,
// read by the factory with head_option_integer() / head_option_number() / head_option().
struct HeadOption {
  enum class Kind { kInteger, kNumber, kText };
  std::string key;
  Kind kind = Kind::kText;
  std::string default_value;  // canonical text ("4", "0.5", "linear")
};

struct HeadRegistration {
  std::string name;  // the value of `head` in configuration files, model files and --head
  // Builds the head for a validated configuration: contexts of config.encoder.context values (or
  // what the encoder type gives), states of state_size values.
  std::function<std::unique_ptr<Head>(const AmortizedConfig& config, Index state_size)> make;
  // Checks the keys the head reads (called by AmortizedConfig::validate when it is the configured
  // head); throws InvalidArgument "AmortizedConfig: <key> = <value> <rule>". May be empty.
  std::function<void(const AmortizedConfig& config)> validate;
  // Adjusts default_setup(problem, head) after the problem's defaults (e.g. fewer mean samples for a
  // costly sampling map, labels for a head that trains on them). May be empty.
  std::function<void(const std::string& problem, AmortizedSetup& setup)> defaults;
  std::vector<HeadOption> options;  // keys of its own (none for the built-in heads)
};

// Every registered head, built-in ones first (flow, score, gaussian), in registration order
// (registering keeps earlier entries, and the HeadType names pointing into them, in place).
const Registry<HeadRegistration>& head_registry();
// The names, in the same order (e.g. for "is not one of" messages and command-line choices).
std::vector<std::string> head_names();
// The registration of a head; InvalidArgument "head = '<name>' is not one of: ..." if none.
const HeadRegistration& head_registration(HeadType head);
// Registers a head from outside the library (before any model uses it; not thread-safe) and
// returns its type. InvalidArgument for an empty or taken name, a missing factory, or an option key
// that is not "<name>.<field>" or is taken.
HeadType register_head(HeadRegistration registration);

// Builds the configured head through its registration.
std::unique_ptr<Head> make_head(const AmortizedConfig& config, Index state_size);
// Throws the configured head's refusal when it cannot train on the labels `labels` asks for
// (Head::check_mean_penalty_supported when labels.pairs > 0, check_variance_penalty_supported when
// labels.variance_weight > 0 too); nothing when labels are off. For callers to ask before they spend
// 4D-Var solves on labels.
void check_labels_supported(const AmortizedConfig& config, const LabelOptions& labels, Index state_size);

}  // namespace varflow::amortized
