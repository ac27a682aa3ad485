#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace ballast {

// "90", "90s", "5m", "1h30m", "2d", "250ms" → duration. A bare number is seconds, and only as the
// whole text: "1h30" is refused rather than read as 1 h 30 s. Sums beyond int64 ms are refused.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// 5400000 ms → "1h30m"; sub-second parts as "ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace ballast
