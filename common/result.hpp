// Errors are values: every fallible function returns Result<T>. An Error carries a stable
// machine-readable code ("<module>.<what>", never reworded once released), a human message,
// the errno when one caused it, and a chain of context added as it travels up.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace ballast {

struct Error {
  std::string code;                  // stable, e.g. "config.unknown-key"
  std::string message;               // what went wrong, for a person
  int sys_errno = 0;                 // errno that caused it, 0 when none
  std::vector<std::string> context;  // innermost first: "reading /etc/x", "loading config"

  // "outer: inner: message (errno text) [code]" — one line, for logs and CLI errors.
  std::string describe() const;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(std::string code, std::string message) {
  return tl::unexpected<Error>(Error{std::move(code), std::move(message), 0, {}});
}

inline tl::unexpected<Error> fail_errno(std::string code, int err, std::string message) {
  return tl::unexpected<Error>(Error{std::move(code), std::move(message), err, {}});
}

// Adds a context line to the error of a failed result; passes success through.
template <class T>
Result<T> with_context(Result<T> r, const std::string& context) {
  if (!r) r.error().context.push_back(context);
  return r;
}

// The same with a context that costs something to build (a path and an offset, on a path taken
// once a command): `make_context()` runs only when `r` failed.
template <class T, class MakeContext>
  requires std::is_invocable_r_v<std::string, MakeContext&>
Result<T> with_context(Result<T> r, MakeContext&& make_context) {
  if (!r) r.error().context.push_back(make_context());
  return r;
}

// The value of a result whose failure the caller treats as "unknown" (the booted version of a
// host whose loader does not say): nullopt then.
template <class T>
std::optional<T> value_if_ok(const Result<T>& r) {
  return r ? std::optional<T>(*r) : std::nullopt;
}

inline Status ok() { return {}; }

}  // namespace ballast

// Unwraps a Result or returns its error from the enclosing function (GNU statement expression,
// supported by both g++ and clang). Not inside braces that build an aggregate: a return from
// there leaves the members built before it undestroyed with clang (a leak LeakSanitizer reports);
// read into a local first.
#define BALLAST_TRY(expr)                                                      \
  ({                                                                           \
    auto&& ballast_try_result_ = (expr);                                       \
    if (!ballast_try_result_)                                                  \
      return ::tl::unexpected<::ballast::Error>(std::move(ballast_try_result_.error())); \
    std::move(*ballast_try_result_);                                           \
  })

// Returns the error of a failed Status (or any Result whose value is unused).
#define BALLAST_CHECK(expr)                                                    \
  do {                                                                         \
    auto&& ballast_check_result_ = (expr);                                     \
    if (!ballast_check_result_)                                                \
      return ::tl::unexpected<::ballast::Error>(std::move(ballast_check_result_.error())); \
  } while (0)
