#include "varflow/amortized/head_registry.h"

#include <algorithm>

#include "varflow/amortized/flow_head.h"
#include "varflow/amortized/gaussian_head.h"
#include "varflow/amortized/score_head.h"
#include "varflow/core/error.h"

namespace varflow::amortized {

namespace {

// The registry, built-in heads first. One line per head.
std::deque<HeadRegistration>& registry() {
  static std::deque<HeadRegistration> heads = {
      flow_head_registration(),
      score_head_registration(),
      gaussian_head_registration(),
  };
  return heads;
}

std::string names_text() {
  std::string names;
  for (const auto& r : registry()) names += (names.empty() ? "" : ", ") + r.name;
  return names;
}

}  // namespace

const std::deque<HeadRegistration>& head_registry() { return registry(); }

std::vector<std::string> head_names() {
  std::vector<std::string> names;
  for (const auto& r : registry()) names.push_back(r.name);
  return names;
}

HeadType head_from_string(const std::string& s, const std::string& key) {
  for (const auto& r : registry()) {
    if (r.name == s) return HeadType(r.name);
  }
  throw InvalidArgument(format_message(key, " = '", s, "' is not one of ", names_text()));
}

const HeadRegistration& head_registration(HeadType head) {
  for (const auto& r : registry()) {
    if (r.name == head.name()) return r;
  }
  throw InvalidArgument(format_message("head = '", head.name(), "' is not one of ", names_text()));
}

HeadType register_head(HeadRegistration registration) {
  const std::string& name = registration.name;
  if (name.empty() || name.find_first_of(" .:\n") != std::string::npos) {
    throw InvalidArgument(format_message("register_head: name = '", name, "' must be a non-empty word"));
  }
  if (!registration.make) throw InvalidArgument(format_message("register_head: head ", name, " has no factory"));
  for (const auto& r : registry()) {
    if (r.name == name) throw InvalidArgument(format_message("register_head: head = '", name, "' is registered already"));
  }
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
  registry().push_back(std::move(registration));
  try {  // every default must parse as its kind
    AmortizedSetup setup;
    for (const auto& o : registry().back().options) apply_entry(setup, o.key, o.default_value, "register_head");
  } catch (const InvalidArgument&) {
    registry().pop_back();
    throw;
  }
  return head_from_string(registry().back().name);
}

std::unique_ptr<Head> make_head(const AmortizedConfig& config, Index state_size) {
  return head_registration(config.head).make(config, state_size);
}

}  // namespace varflow::amortized
