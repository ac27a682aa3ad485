// Reading one member of a JSON object that a peer, a tool or a file on disk handed us.
// nlohmann::json::value() throws when the member is there with another type (and converts an
// out-of-range number with undefined behaviour); input we did not write must never do either.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

namespace ballast {

// The member's string when `object` is an object holding `key` as a string, else `fallback`.
inline std::string string_member(const nlohmann::json& object, const char* key, const std::string& fallback = {}) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// The member's integer when `object` holds `key` as an integer that fits an int64_t, else `fallback`.
inline int64_t integer_member(const nlohmann::json& object, const char* key, int64_t fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (it->is_number_unsigned())
    return it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? it->get<int64_t>() : fallback;
  return it->is_number_integer() ? it->get<int64_t>() : fallback;
}

}  // namespace ballast
