#include "varflow/amortized/head_registry.h"

#include <algorithm>

#include "varflow/amortized/flow_head.h"
#include "varflow/amortized/gaussian_head.h"
#include "varflow/amortized/score_head.h"
#include "varflow/core/error.h"

namespace varflow::amortized {

namespace {

// The registry, built-in heads first. One line per head.
Registry<HeadRegistration>& registry() {
  static Registry<HeadRegistration> heads("head", {
                                                      flow_head_registration(),
                                                      score_head_registration(),
                                                      gaussian_head_registration(),
                                                  });
  return heads;
}

}  // namespace

const Registry<HeadRegistration>& head_registry() { return registry(); }

std::vector<std::string> head_names() { return registry().names(); }

HeadType head_from_string(const std::string& s, const std::string& key) {
  if (const HeadRegistration* r = registry().find(s)) return HeadType(r->name);
  throw InvalidArgument(format_message(key, " = '", s, "' is not one of: ", registry().names_text()));
}

const HeadRegistration& head_registration(HeadType head) { return registry().get(std::string(head.name()), ""); }

HeadType register_head(HeadRegistration registration) {
  const std::string& name = registration.name;
  if (name.empty() || name.find_first_of(" .:\n") != std::string::npos) {
    throw InvalidArgument(format_message("register_head: name = '", name, "' must be a non-empty word"));
  }
  if (!registration.make) throw InvalidArgument(format_message("register_head: head ", name, " has no factory"));
  for (std::size_t i = 0; i < registration.options.size(); ++i) {
    const std::string& key = registration.options[i].key;
    if (key.rfind(name + ".", 0) != 0 || key.size() == name.size() + 1) {
      throw InvalidArgument(format_message("register_head: option key = '", key, "' must be '", name, ".<field>'"));
    }
    bool taken = false;
    for (std::size_t k = 0; k < i; ++k) taken = taken || registration.options[k].key == key;
    try {
      (void)entry_value(AmortizedSetup{}, key);
      taken = true;
    } catch (const InvalidArgument&) {
      // not a key yet
    }
    if (taken) throw InvalidArgument(format_message("register_head: option key = '", key, "' is taken"));
  }
  const HeadRegistration& added = registry().add(std::move(registration), "register_head");
  try {  // every default must parse as its kind
    AmortizedSetup setup;
    for (const auto& o : added.options) apply_entry(setup, o.key, o.default_value, "register_head");
  } catch (const InvalidArgument&) {
    registry().remove_last();
    throw;
  }
  return head_from_string(added.name);
}

std::unique_ptr<Head> make_head(const AmortizedConfig& config, Index state_size) {
  return head_registration(config.head).make(config, state_size);
}

void check_labels_supported(const AmortizedConfig& config, const LabelOptions& labels, Index state_size) {
  if (!labels.enabled()) return;
  const auto head = make_head(config, state_size);
  head->check_mean_penalty_supported();
  if (labels.variance_weight > 0.0) head->check_variance_penalty_supported();
}

}  // namespace varflow::amortized
