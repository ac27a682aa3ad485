// A release's version: one parse rule and one order for every part of ballast (repository,
// pins, staging, boot entries, image builder). The order is the UAPI Version Format
// Specification's, the one systemd-boot sorts entries by and `systemd-analyze compare-versions`
// prints; tests/integration/boot checks it against systemd-analyze.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace ballast {

class Version {
 public:
  // The one parse rule: 1-64 characters of 0-9 A-Z a-z . _ ~ ^ -, starting with a letter or
  // digit. '+' is reserved for the boot counter. Error code "version.invalid", message names the
  // string and the rule.
  static Result<Version> parse(std::string_view text);
  const std::string& str() const { return text_; }
  // The UAPI version order (what `systemd-analyze compare-versions` implements).
  friend std::weak_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) { return a.text_ == b.text_; }  // identity

 private:
  std::string text_;
};

// The text of a version that may be unknown or absent, "" then: for the JSON and status views
// that keep versions as strings.
inline std::string str_or_empty(const std::optional<Version>& v) { return v ? v->str() : std::string(); }

// The UAPI order on raw strings (for boot entry ids and other non-version strings).
// <0 when a is older than b, 0 when equal, >0 when a is newer.
int compare_uapi_versions(std::string_view a, std::string_view b);

}  // namespace ballast
