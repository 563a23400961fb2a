#pragma once
// The message of the exception a call throws, for tests that check what an error says.
#include <exception>
#include <string>
#include <type_traits>

namespace varflow::test {

// f's exception message, or "(no exception)" when f returns normally. With E (e.g.
// message_of<InvalidArgument>(f)), an exception of another type gives "(another exception: ...)".
template <typename E = std::exception, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    if constexpr (!std::is_same_v<E, std::exception>) {
      if (dynamic_cast<const E*>(&e) == nullptr) return std::string("(another exception: ") + e.what() + ")";
    }
    return e.what();
  }
  return "(no exception)";
}

}  // namespace varflow::test
