// Logging: human lines on stderr, or structured journald records when stderr is the journal
// (systemd sets JOURNAL_STREAM to stderr's device:inode). Fields are KEY=value pairs; a
// MESSAGE_ID makes an event findable with `journalctl MESSAGE_ID=…`.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ballast::log {

enum class Level { debug = 7, info = 6, notice = 5, warning = 4, error = 3 };

using Fields = std::vector<std::pair<std::string, std::string>>;

void set_min_level(Level level);
void write(Level level, const std::string& message, const Fields& fields = {});

inline void debug(const std::string& m, const Fields& f = {}) { write(Level::debug, m, f); }
inline void info(const std::string& m, const Fields& f = {}) { write(Level::info, m, f); }
inline void notice(const std::string& m, const Fields& f = {}) { write(Level::notice, m, f); }
inline void warning(const std::string& m, const Fields& f = {}) { write(Level::warning, m, f); }
inline void error(const std::string& m, const Fields& f = {}) { write(Level::error, m, f); }

}  // namespace ballast::log
