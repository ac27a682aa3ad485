// What the CLI verbs over D-Bus show: progress lines and bars, history, and the offline history read
// from the state directory when the daemon is not running. Pure functions, for unit tests.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/api.hpp"
#include "common/result.hpp"

namespace ballast::agent::dbus {

// "512 B", "12.3 KiB", "27.0 MiB", "1.5 GiB".
std::string format_bytes(uint64_t bytes);
// "0:05", "12:30", "1:02:03"; "--:--" when the rate or total is unknown.
std::string format_eta(const Progress& p);

// One progress line. `bar`: a terminal line "[#####-----]  45%  12.3 MiB/27.0 MiB  3.1 MiB/s  ETA 0:05
// message" of at most `width` columns; otherwise the plain "progress 45% …" line for logs and pipes.
std::string format_progress(const Progress& p, bool bar, int width = 80);

// The "history" array of <state_dir>/flow.json (written by UpdateFlow); an empty array when the
// flow never ran; "agent.bad-state" when the file is not what UpdateFlow writes.
Result<nlohmann::json> read_offline_history(const std::string& state_dir);
// One line per finished update: "2026-11-24 06:42:17 UTC  1.0 -> 1.1  committed".
std::string history_to_text(const nlohmann::json& history);

// Where `ballast update` stops following the daemon: the flow rests or has handed over to a reboot.
// With download-only, being staged is enough.
bool update_finished(const std::string& state, bool download_only);

}  // namespace ballast::agent::dbus
