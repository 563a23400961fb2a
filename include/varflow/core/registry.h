#pragma once
// A registry of named entries (models, problems, heads, oracles): built-in entries first, a
// program's own added at start-up with add(). Every registry of varflow is one of these, so they
// all refuse a duplicate and an unknown name the same way:
//
//   Registry<ModelEntry> models("model name", builtin_models());
//   models.add(entry, "register_model")   -> "register_model: model name = 'x' is already registered"
//   models.get("lorenz9", "config")       -> "config: model name = 'lorenz9' is not one of: lorenz96, ..."
//
// `Entry` has a public std::string `name`. Entries live in a deque, so a reference returned by
// get() or find() stays valid when more are added. Not thread-safe for add(); register before
// starting threads.
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "varflow/core/error.h"

namespace varflow {

template <typename Entry>
class Registry {
 public:
  // `field` names what a name is in messages ("model name", "problem", "head").
  Registry(std::string field, std::vector<Entry> builtin)
      : field_(std::move(field)), entries_(builtin.begin(), builtin.end()) {}

  // Adds `entry`; InvalidArgument "<who>: <field> = '<name>' is already registered" for a name in
  // use, "<who>: an entry needs a name" for an empty one.
  const Entry& add(Entry entry, const std::string& who) {
    if (entry.name.empty()) throw InvalidArgument(who + ": an entry needs a name");
    if (find(entry.name) != nullptr) {
      throw InvalidArgument(format_message(who, ": ", field_, " = '", entry.name, "' is already registered"));
    }
    entries_.push_back(std::move(entry));
    return entries_.back();
  }

  // Removes the entry added last (a registration that failed a check after add()).
  void remove_last() { entries_.pop_back(); }

  // The entry called `name`, or nullptr.
  const Entry* find(const std::string& name) const {
    for (const auto& e : entries_) {
      if (e.name == name) return &e;
    }
    return nullptr;
  }

  // The entry called `name`; otherwise InvalidArgument "<where>: <field> = '<name>' is not one of:
  // a, b" (without "<where>: " when `where` is empty).
  const Entry& get(const std::string& name, const std::string& where) const {
    if (const Entry* e = find(name)) return *e;
    throw InvalidArgument(
        format_message(where.empty() ? "" : where + ": ", field_, " = '", name, "' is not one of: ", names_text()));
  }

  // Registered names in order, and as "a, b, c".
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }
  std::string names_text() const {
    std::string out;
    for (const auto& e : entries_) out += (out.empty() ? "" : ", ") + e.name;
    return out;
  }

  const std::deque<Entry>& entries() const { return entries_; }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::string field_;
  std::deque<Entry> entries_;
};

}  // namespace varflow
