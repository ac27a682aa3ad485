#include "common/version.hpp"

#include <algorithm>

namespace ballast {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_version_char(char c) { return is_digit(c) || is_alpha(c) || c == '~' || c == '-' || c == '^' || c == '.'; }

int sign(long v) { return v < 0 ? -1 : v > 0 ? 1 : 0; }

// Compares the byte strings; a string that has bytes left after the common prefix is newer.
int compare_rest(std::string_view a, std::string_view b) { return sign(a.compare(b)); }

}  // namespace

Result<Version> Version::parse(std::string_view text) {
  bool valid = !text.empty() && text.size() <= 64 && (is_digit(text[0]) || is_alpha(text[0]));
  for (size_t k = 0; valid && k < text.size(); ++k) {
    char c = text[k];
    valid = is_digit(c) || is_alpha(c) || c == '.' || c == '_' || c == '~' || c == '^' || c == '-';
  }
  if (!valid)
    return fail("version.invalid", "\"" + std::string(text) +
                                       "\" is not a version: 1-64 characters of 0-9 A-Z a-z . _ ~ ^ -, starting with a "
                                       "letter or digit ('+' is reserved for the boot counter)");
  Version v;
  v.text_ = std::string(text);
  return v;
}

std::weak_ordering operator<=>(const Version& a, const Version& b) {
  int r = compare_uapi_versions(a.text_, b.text_);
  return r < 0 ? std::weak_ordering::less : r > 0 ? std::weak_ordering::greater : std::weak_ordering::equivalent;
}

int compare_uapi_versions(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  for (;;) {
    while (i < a.size() && !is_version_char(a[i])) ++i;
    while (j < b.size() && !is_version_char(b[j])) ++j;
    auto at = [](std::string_view s, size_t k) { return k < s.size() ? s[k] : '\0'; };
    char x = at(a, i), y = at(b, j);

    // '~' marks a pre-release: it sorts before everything, even the end of the string.
    if (x == '~' || y == '~') {
      if (x != y) return x == '~' ? -1 : 1;
      ++i, ++j;
      x = at(a, i), y = at(b, j);
    }
    if (x == '\0' || y == '\0') return compare_rest(a.substr(i), b.substr(j));

    // '-' separates version from release: the side that reaches it first is older.
    if (x == '-' || y == '-') {
      if (x != y) return x == '-' ? -1 : 1;
      ++i, ++j;
      x = at(a, i), y = at(b, j);
    }
    // '^' marks a patch on a release: newer than the release itself (the end-of-string rule
    // above), older than any further component ("1^p" < "1.1", "1^p" < "1a").
    if (x == '^' || y == '^') {
      if (x != y) return x == '^' ? -1 : 1;
      ++i, ++j;
      x = at(a, i), y = at(b, j);
    }
    // '.' before a further part: a side continuing with something else is newer.
    if (x == '.' || y == '.') {
      if (x != y) return x == '.' ? -1 : 1;
      ++i, ++j;
      x = at(a, i), y = at(b, j);
    }

    size_t ie = i, je = j;
    if (is_digit(x) || is_digit(y)) {
      while (ie < a.size() && is_digit(a[ie])) ++ie;
      while (je < b.size() && is_digit(b[je])) ++je;
      // A numeric part is newer than none at all.
      if ((ie > i) != (je > j)) return ie > i ? 1 : -1;
      size_t ii = i, jj = j;
      while (ii < ie && a[ii] == '0') ++ii;
      while (jj < je && b[jj] == '0') ++jj;
      // Without leading zeros the longer number is the bigger one; arbitrarily long parts work.
      if (ie - ii != je - jj) return ie - ii > je - jj ? 1 : -1;
      int r = sign(a.substr(ii, ie - ii).compare(b.substr(jj, je - jj)));
      if (r != 0) return r;
    } else {
      while (ie < a.size() && is_alpha(a[ie])) ++ie;
      while (je < b.size() && is_alpha(b[je])) ++je;
      size_t n = std::min(ie - i, je - j);
      int r = sign(a.substr(i, n).compare(b.substr(j, n)));
      if (r != 0) return r;
      if (ie - i != je - j) return ie - i > je - j ? 1 : -1;
    }
    i = ie, j = je;
  }
}

}  // namespace ballast
