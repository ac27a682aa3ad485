// Percent-encoding for URL parts: everything but RFC 3986's unreserved characters, so a value
// (a TUF role name, an OAuth resource URI) stays one path component or one query value.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace ballast::repository {

inline std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace ballast::repository
