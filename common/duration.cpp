#include "common/duration.hpp"

#include <cctype>
#include <cstdint>
#include <limits>

namespace ballast {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto bad = [&] { return fail("duration.invalid", "not a duration: \"" + std::string(text) +
                                                       "\" (examples: 90s, 5m, 1h30m, 2d)"); };
  if (text.empty()) return bad();
  int64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad();
    const bool first_part = i == 0;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > std::numeric_limits<int64_t>::max() / 10 - 10) return bad();
      n = n * 10 + (text[i++] - '0');
    }
    std::string_view unit;
    size_t start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    unit = text.substr(start, i - start);
    int64_t mult;
    if (unit.empty() || unit == "s") mult = 1000;
    else if (unit == "ms") mult = 1;
    else if (unit == "m" || unit == "min") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else if (unit == "w") mult = 7 * 86'400'000LL;
    else return bad();
    if (n > std::numeric_limits<int64_t>::max() / mult) return bad();
    if (n * mult > std::numeric_limits<int64_t>::max() - total_ms) return bad();
    total_ms += n * mult;
    if (unit.empty() && (!first_part || i != text.size())) return bad();
  }
  return std::chrono::milliseconds(total_ms);
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  const struct { int64_t size; const char* unit; } parts[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& p : parts) {
    if (ms >= p.size) {
      out += std::to_string(ms / p.size) + p.unit;
      ms %= p.size;
    }
  }
  return out;
}

}  // namespace ballast
