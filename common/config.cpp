#include "common/config.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <cassert>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <toml++/toml.h>

#include "common/duration.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast {

namespace {

const ConfigKeySpec* find_spec(std::string_view key) {
  for (const auto& s : config_schema())
    if (s.key == key) return &s;
  return nullptr;
}

const char* type_name(ConfigType t) {
  switch (t) {
    case ConfigType::string: return "a string";
    case ConfigType::integer: return "an integer";
    case ConfigType::boolean: return "a boolean";
    case ConfigType::number: return "a number";
    case ConfigType::duration: return "a duration (\"90s\", \"5m\", \"1h30m\") or seconds";
    case ConfigType::string_list: return "an array of strings";
    case ConfigType::choice: return "one of the listed strings";
  }
  return "?";
}

std::string where(const std::string& file, const toml::node& node) {
  return file + ":" + std::to_string(node.source().begin.line);
}

// Converts one TOML node to the key's type; errors name file, line and key.
Result<ConfigValue> convert(const ConfigKeySpec& spec, const toml::node& node, const std::string& file) {
  auto wrong = [&](std::string detail = {}) {
    return fail("config.wrong-type", where(file, node) + ": key '" + spec.key + "' must be " +
                                         type_name(spec.type) + (detail.empty() ? "" : " (" + detail + ")"));
  };
  switch (spec.type) {
    case ConfigType::string:
      if (auto v = node.value<std::string>(); v && node.is_string()) return ConfigValue(*v);
      return wrong();
    case ConfigType::choice: {
      if (!node.is_string()) return wrong();
      std::string v = *node.value<std::string>();
      if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end()) {
        std::string list;
        for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
        return fail("config.bad-value", where(file, node) + ": key '" + spec.key + "' is \"" + v +
                                            "\" but must be one of: " + list);
      }
      return ConfigValue(v);
    }
    case ConfigType::integer: {
      if (!node.is_integer()) return wrong();
      int64_t v = *node.value<int64_t>();
      if (v < spec.min || v > spec.max)
        return fail("config.bad-value", where(file, node) + ": key '" + spec.key + "' is " + std::to_string(v) +
                                            ", outside " + std::to_string(spec.min) + ".." +
                                            (spec.max == INT64_MAX ? std::string("") : std::to_string(spec.max)));
      return ConfigValue(v);
    }
    case ConfigType::boolean:
      if (!node.is_boolean()) return wrong();
      return ConfigValue(*node.value<bool>());
    case ConfigType::number:
      if (!node.is_number()) return wrong();
      return ConfigValue(*node.value<double>());
    case ConfigType::duration: {
      std::chrono::milliseconds d;
      if (node.is_integer()) {
        int64_t s = *node.value<int64_t>();
        if (s < 0) return wrong("negative");
        // Seconds beyond the bound are refused below without overflowing on the way.
        d = std::chrono::milliseconds(s > spec.max / 1000 ? spec.max + 1 : s * 1000);
      } else if (node.is_string()) {
        auto parsed = parse_duration(*node.value<std::string>());
        if (!parsed) return wrong(parsed.error().message);
        d = *parsed;
      } else {
        return wrong();
      }
      if (d.count() < spec.min || d.count() > spec.max)
        return fail("config.bad-value", where(file, node) + ": key '" + spec.key + "' is " +
                                            (d.count() > spec.max ? "more than " + format_duration(std::chrono::milliseconds(spec.max))
                                                                  : format_duration(d)) +
                                            ", outside " + format_duration(std::chrono::milliseconds(std::max<int64_t>(spec.min, 0))) +
                                            ".." + format_duration(std::chrono::milliseconds(spec.max)));
      return ConfigValue(d);
    }
    case ConfigType::string_list: {
      const auto* arr = node.as_array();
      if (!arr) return wrong();
      std::vector<std::string> out;
      for (const auto& item : *arr) {
        if (!item.is_string()) return wrong("element is not a string");
        out.push_back(*item.value<std::string>());
      }
      return ConfigValue(out);
    }
  }
  return wrong();
}

}  // namespace

const std::vector<std::string>& default_config_dirs() {
  static const std::vector<std::string> dirs = {"/usr/lib/ballast/config.d", "/etc/ballast/config.d",
                                                "/run/ballast/config.d"};
  return dirs;
}

Config::Config() {
  for (const auto& spec : config_schema()) {
    ConfigEntry e;
    e.source = "default";
    if (!spec.default_text.empty()) {
      auto table = toml::parse("v = " + spec.default_text);
      auto value = convert(spec, *table.get("v"), "<default>");
      assert(value && "schema default must convert");
      e.value = *value;
      e.set = true;
    } else {
      switch (spec.type) {
        case ConfigType::integer: e.value = int64_t{0}; break;
        case ConfigType::boolean: e.value = false; break;
        case ConfigType::number: e.value = 0.0; break;
        case ConfigType::duration: e.value = std::chrono::milliseconds(0); break;
        case ConfigType::string_list: e.value = std::vector<std::string>{}; break;
        default: e.value = std::string(); break;
      }
    }
    entries_.emplace(spec.key, std::move(e));
  }
}

Result<std::vector<std::string>> resolve_config_files(const std::vector<std::string>& dirs) {
  std::map<std::string, std::string> by_name;  // file name → path; later directories replace
  for (const auto& dir : dirs) {
    auto names = list_dir(dir);
    if (!names) {
      if (names.error().code == "io.not-found") continue;
      return tl::unexpected(names.error());
    }
    for (const auto& name : *names) {
      if (name.size() < 6 || name.substr(name.size() - 5) != ".toml" || name[0] == '.') continue;
      std::string path = path_join(dir, name);
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) {
        log::warning("config: skipping " + path + ": " + std::strerror(errno));
        continue;
      }
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
        by_name.erase(name);  // a symlink to /dev/null masks the name
        continue;
      }
      if (!S_ISREG(st.st_mode)) {
        log::warning("config: skipping " + path + ": not a regular file");
        continue;
      }
      by_name[name] = path;
    }
  }
  std::vector<std::string> files;
  for (auto& [name, path] : by_name) files.push_back(path);
  return files;
}

Result<Config> Config::load(const std::vector<std::string>& dirs) {
  Config cfg;
  auto files = BALLAST_TRY(resolve_config_files(dirs));
  for (const auto& path : files) {
    // Checked again on open: what was a file when listed may have been swapped for a FIFO.
    auto text = BALLAST_TRY(read_regular_file(path, 1 << 20));
    BALLAST_CHECK(cfg.merge_text(text, path));
  }
  return cfg;
}

Status Config::merge_text(std::string_view text, const std::string& name) {
  toml::table table;
  try {
    table = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return fail("config.syntax", name + ":" + std::to_string(e.source().begin.line) + ": " +
                                     std::string(e.description()));
  }
  std::map<std::string, ConfigEntry> staged;
  for (const auto& [section_key, section_node] : table) {
    std::string section(section_key.str());
    const auto* section_table = section_node.as_table();
    if (!section_table) {
      return fail("config.unknown-key", where(name, section_node) + ": key '" + section +
                                            "' is not a section; keys live in sections such as [update]");
    }
    for (const auto& [key_part, node] : *section_table) {
      std::string key = section + "." + std::string(key_part.str());
      const ConfigKeySpec* spec = find_spec(key);
      if (!spec) return fail("config.unknown-key", where(name, node) + ": unknown key '" + key + "'");
      auto value = convert(*spec, node, name);
      if (!value) return tl::unexpected(value.error());
      staged[key] = ConfigEntry{std::move(*value), where(name, node), true};
    }
  }
  // A file is applied whole or not at all.
  for (auto& [k, e] : staged) entries_[k] = std::move(e);
  files_.push_back(name);
  return ok();
}

const ConfigEntry& Config::entry(std::string_view key) const {
  auto it = entries_.find(std::string(key));
  assert(it != entries_.end() && "key missing from config_schema()");
  return it->second;
}

bool Config::has(std::string_view key) const { return entry(key).set; }
const std::string& Config::get_string(std::string_view key) const { return std::get<std::string>(entry(key).value); }
int64_t Config::get_int(std::string_view key) const { return std::get<int64_t>(entry(key).value); }
bool Config::get_bool(std::string_view key) const { return std::get<bool>(entry(key).value); }
double Config::get_number(std::string_view key) const { return std::get<double>(entry(key).value); }
std::chrono::milliseconds Config::get_duration(std::string_view key) const {
  return std::get<std::chrono::milliseconds>(entry(key).value);
}
const std::vector<std::string>& Config::get_list(std::string_view key) const {
  return std::get<std::vector<std::string>>(entry(key).value);
}

std::string Config::format_value(const ConfigValue& v) {
  struct Visitor {
    // A JSON string literal is also a valid TOML basic string.
    std::string operator()(const std::string& s) const { return nlohmann::json(s).dump(); }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(double d) const {
      std::ostringstream os;
      os << d;
      return os.str();
    }
    std::string operator()(std::chrono::milliseconds d) const { return "\"" + format_duration(d) + "\""; }
    std::string operator()(const std::vector<std::string>& l) const {
      std::string out = "[";
      for (size_t i = 0; i < l.size(); ++i) out += (i ? ", " : "") + (*this)(l[i]);
      return out + "]";
    }
  };
  return std::visit(Visitor{}, v);
}

}  // namespace ballast
