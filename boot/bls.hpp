// Boot Loader Specification Type #1 entries as ballast writes them:
//   $BOOT/loader/entries/ballast-<version>[+LEFT[-DONE]].conf
// with the boot-counting suffix of systemd's Automatic Boot Assessment in the file name.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace ballast::boot {

inline constexpr std::string_view kEntryPrefix = "ballast-";
inline constexpr std::string_view kSortKey = "ballast";

// The boot-counting part of a file name. Absent: the entry is not counted (good).
struct BootCounter {
  int left = 0;
  int done = 0;
  bool operator==(const BootCounter&) const = default;
};

// A file name split into its parts: "<stem>[+LEFT[-DONE]].conf" (Type #1) or
// "<stem>[+LEFT[-DONE]].efi" (Type #2: a unified kernel image in $ESP/EFI/Linux/).
struct EntryName {
  std::string stem;                    // "ballast-2.0"
  std::optional<BootCounter> counter;  // +LEFT-DONE
  bool uki = false;                    // ".efi"
};

// Parses any BLS file name; counters of any width ("+003-0001") are accepted. Fails for names
// ending in neither ".conf" nor ".efi" and for a malformed or overflowing counter.
Result<EntryName> parse_entry_name(std::string_view file_name);

// "<stem>+LEFT-DONE.conf" (".efi" for a UKI), numbers written in plain decimal without padding;
// DONE is always written once a counter exists so every counted name has the same shape.
std::string format_entry_name(const std::string& stem, const std::optional<BootCounter>& counter, bool uki = false);

// systemd ignores entry files whose names hold anything but letters, digits and "+-_.", so the
// version is escaped in file and directory names: '_' → "__", '~' → "_t", '^' → "_c".
// "ballast-" + escaped version; the entry's `version` field keeps the real one.
std::string escape_version(std::string_view version);
std::string stem_of_version(std::string_view version);
// The version of a ballast entry stem ("ballast-2.0_trc1" → "2.0~rc1"); nullopt for other
// entries and broken escapes.
std::optional<std::string> version_of_stem(std::string_view stem);

// The fields of a Type #1 entry that ballast reads and writes.
struct EntryFile {
  std::string title;
  std::string version;
  std::string sort_key;
  std::string machine_id;
  std::string linux_path;
  std::vector<std::string> initrd_paths;
  std::string options;  // several `options` lines are joined with a space
  std::vector<std::pair<std::string, std::string>> other;  // keys ballast does not interpret, kept
};

// Parses the text of an entry: "key value" lines, '#' comments, blank lines. A line without a
// value, a NUL byte, or an entry without `linux` is an error (boot.bad-entry).
Result<EntryFile> parse_entry(std::string_view text);
std::string format_entry(const EntryFile& entry);

}  // namespace ballast::boot
