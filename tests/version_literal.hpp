// Tests name versions as literals: "1.0"_v (or make_version(s)) is Version::parse("1.0"), which
// must succeed.
#pragma once

#include <stdexcept>
#include <string>

#include "common/version.hpp"

namespace ballast::version_literals {

inline Version make_version(std::string_view text) {
  auto v = Version::parse(text);
  if (!v) throw std::invalid_argument(v.error().describe());
  return *v;
}

inline Version operator""_v(const char* text, size_t size) { return make_version(std::string_view(text, size)); }

}  // namespace ballast::version_literals
