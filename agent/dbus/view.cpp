#include "agent/dbus/view.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/file.hpp"
#include "common/json_member.hpp"

namespace ballast::agent::dbus {

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string format_eta(const Progress& p) {
  if (p.rate <= 0 || p.total_bytes == 0 || p.bytes > p.total_bytes) return "--:--";
  double secs = std::ceil(static_cast<double>(p.total_bytes - p.bytes) / p.rate);
  if (secs > 359999) return "--:--";
  auto s = static_cast<long>(secs);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string format_progress(const Progress& p, bool bar, int width) {
  double pct = std::clamp(p.percent, 0.0, 100.0);
  char pct_text[16];
  std::snprintf(pct_text, sizeof pct_text, "%3.0f%%", pct);
  std::string amount = format_bytes(p.bytes);
  if (p.total_bytes) amount += (bar ? "/" : " of ") + format_bytes(p.total_bytes);
  std::string rate = format_bytes(static_cast<uint64_t>(p.rate)) + "/s";
  std::string eta = format_eta(p);
  if (!bar) {
    std::string line = std::string("progress ") + pct_text + " " + amount + " at " + rate + ", ETA " + eta;
    if (!p.message.empty()) line += ": " + p.message;
    return line;
  }
  constexpr int cells = 20;
  int filled = static_cast<int>(pct / 100.0 * cells);
  std::string line = "[" + std::string(filled, '#') + std::string(cells - filled, '-') + "] " + pct_text + "  " +
                     amount + "  " + rate + "  ETA " + eta;
  if (!p.message.empty()) line += "  " + p.message;
  if (width > 0 && static_cast<int>(line.size()) > width) line.resize(width);
  return line;
}

Result<nlohmann::json> read_offline_history(const std::string& state_dir) {
  auto path = path_join(state_dir, "flow.json");
  auto text = read_file(path);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return nlohmann::json::array();
    return tl::unexpected<Error>(text.error());
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("agent.bad-state", path + " is not a JSON object");
  if (!j.contains("history")) return nlohmann::json::array();
  if (!j["history"].is_array()) return fail("agent.bad-state", path + ": \"history\" is not an array");
  return j["history"];
}

std::string history_to_text(const nlohmann::json& history) {
  if (!history.is_array() || history.empty()) return "no finished updates\n";
  std::string out;
  for (const auto& line : history) {
    if (!line.is_object()) continue;
    std::string when = "?";
    if (line.contains("time") && line["time"].is_number_integer()) {
      std::time_t t = line["time"].get<int64_t>();
      std::tm tm{};
      char buf[64];
      if (gmtime_r(&t, &tm) && std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm)) when = buf;
    }
    out += when + "  " + string_member(line, "from", "?") + " -> " + string_member(line, "target", "?") + "  " +
           string_member(line, "result", "?");
    std::string error = string_member(line, "error");
    if (!error.empty()) out += ": " + error;
    out += "\n";
  }
  return out;
}

bool update_finished(const std::string& state, bool download_only) {
  if (download_only && state == "staged") return true;
  return state == "idle" || state == "waiting-to-reboot" || state == "rebooting" || state == "committed" ||
         state == "rolled-back" || state == "failed";
}

}  // namespace ballast::agent::dbus
