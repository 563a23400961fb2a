#pragma once
// The message of the exception a call throws, for tests that check what an error says.
#include <exception>
#include <string>

namespace varflow::test {

// f's exception message, or "(no exception)" when f returns normally.
template <typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace varflow::test
