// Configuration: TOML drop-ins merged from several directories, validated against one schema
// (config_schema.cpp) so that an unknown key or a wrong type is an error naming file, line, key.
//
// Directories are read lowest priority first (default /usr/lib, /etc, /run …/ballast/config.d).
// Only `*.toml` names not starting with a dot are read (an editor's `.#10.toml` is not config),
// and only regular files (or symlinks to them): a FIFO, device, socket, directory or dangling
// symlink is skipped with a warning. Files are merged in lexical order of their names; a file in a
// later directory replaces a file of the same name in an earlier one, and a symlink to /dev/null
// masks it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace ballast {

enum class ConfigType { string, integer, boolean, number, duration, string_list, choice };

struct ConfigKeySpec {
  std::string key;            // "section.name"
  ConfigType type;
  std::string default_text;   // shown in docs; parsed as TOML value text; empty → no default
  std::string doc;
  std::vector<std::string> choices = {};  // for ConfigType::choice
  int64_t min = INT64_MIN;    // for integers; for durations in milliseconds (every duration key
  int64_t max = INT64_MAX;    // has both: a test keeps them below a year)
};

// The one list of every configuration key.
const std::vector<ConfigKeySpec>& config_schema();

using ConfigValue = std::variant<std::string, int64_t, bool, double, std::chrono::milliseconds,
                                 std::vector<std::string>>;

struct ConfigEntry {
  ConfigValue value;
  std::string source;  // "path:line", or "default"
  bool set = false;    // false: key has no default and no file set it
};

const std::vector<std::string>& default_config_dirs();

class Config {
 public:
  // Defaults only.
  Config();

  static Result<Config> load(const std::vector<std::string>& dirs);

  // Parses one TOML text as if it were the file `name`, merging over the current values.
  Status merge_text(std::string_view text, const std::string& name);

  bool has(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  double get_number(std::string_view key) const;
  std::chrono::milliseconds get_duration(std::string_view key) const;
  const std::vector<std::string>& get_list(std::string_view key) const;

  const std::map<std::string, ConfigEntry>& entries() const { return entries_; }
  const std::vector<std::string>& files() const { return files_; }  // in merge order

  // Value as TOML text (strings quoted, durations as "1h30m").
  static std::string format_value(const ConfigValue& v);

 private:
  const ConfigEntry& entry(std::string_view key) const;
  std::map<std::string, ConfigEntry> entries_;
  std::vector<std::string> files_;
};

// Which files `load` would read, in merge order, after replacement and masking.
Result<std::vector<std::string>> resolve_config_files(const std::vector<std::string>& dirs);

}  // namespace ballast
