// `ballast config show|keys`: the merged configuration and the schema.
#include <iostream>

#include "agent/cli/verb.hpp"
#include "common/duration.hpp"

namespace ballast::cli {
namespace {

const char* type_label(ConfigType t) {
  switch (t) {
    case ConfigType::string: return "string";
    case ConfigType::integer: return "integer";
    case ConfigType::boolean: return "boolean";
    case ConfigType::number: return "number";
    case ConfigType::duration: return "duration";
    case ConfigType::string_list: return "list of strings";
    case ConfigType::choice: return "choice";
  }
  return "?";
}

nlohmann::json value_json(const ConfigValue& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::json {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::chrono::milliseconds>) return x.count() / 1000.0;
        else return x;
      },
      v);
}

int show(const GlobalOptions& g) {
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  if (g.json) {
    nlohmann::json out{{"files", cfg->files()}, {"values", nlohmann::json::object()}};
    for (const auto& [key, e] : cfg->entries()) {
      out["values"][key] = {{"value", e.set ? value_json(e.value) : nlohmann::json()}, {"source", e.source}};
    }
    print_json(out);
    return 0;
  }
  std::cout << "# files, in merge order:\n";
  if (cfg->files().empty()) std::cout << "#   (none; built-in defaults only)\n";
  for (const auto& f : cfg->files()) std::cout << "#   " << f << "\n";
  std::string section;
  for (const auto& [key, e] : cfg->entries()) {
    auto dot = key.find('.');
    std::string sec = key.substr(0, dot);
    if (sec != section) {
      std::cout << "\n[" << sec << "]\n";
      section = sec;
    }
    std::string line = key.substr(dot + 1) + " = " + (e.set ? Config::format_value(e.value) : "");
    if (!e.set) line = "# " + line + "(unset)";
    std::cout << line << std::string(line.size() < 44 ? 44 - line.size() : 1, ' ') << "# " << e.source << "\n";
  }
  return 0;
}

int keys(const GlobalOptions& g, bool markdown) {
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : config_schema()) {
      nlohmann::json key{{"key", s.key}, {"type", type_label(s.type)}, {"default", s.default_text},
                         {"choices", s.choices}, {"doc", s.doc}};
      if (s.type == ConfigType::integer) key.update({{"min", s.min}, {"max", s.max}});
      if (s.type == ConfigType::duration)
        key.update({{"min", format_duration(std::chrono::milliseconds(s.min))},
                    {"max", format_duration(std::chrono::milliseconds(s.max))}});
      out.push_back(std::move(key));
    }
    print_json(out);
    return 0;
  }
  if (markdown) std::cout << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& s : config_schema()) {
    std::string type = type_label(s.type);
    if (s.type == ConfigType::choice) {
      type = "";
      for (const auto& c : s.choices) type += (type.empty() ? "" : " \\| ") + c;
    }
    if (markdown)
      std::cout << "| `" << s.key << "` | " << type << " | " << (s.default_text.empty() ? "—" : "`" + s.default_text + "`")
                << " | " << s.doc << " |\n";
    else
      std::cout << s.key << " (" << type << ", default " << (s.default_text.empty() ? "unset" : s.default_text)
                << "): " << s.doc << "\n";
  }
  return 0;
}

void setup(VerbContext& ctx) {
  auto* config = ctx.app.add_subcommand("config", "Show the merged configuration and the known keys");
  config->require_subcommand(1);
  auto* show_cmd = config->add_subcommand("show", "Print the merged configuration and where each value came from");
  show_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return show(g); }; });
  auto* keys_cmd = config->add_subcommand("keys", "List every configuration key with its type and default");
  static bool markdown = false;
  keys_cmd->add_flag("--markdown", markdown, "Print a Markdown table (as in README.md)");
  keys_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return keys(g, markdown); }; });
}

BALLAST_REGISTER_VERB(900, setup);

}  // namespace
}  // namespace ballast::cli
