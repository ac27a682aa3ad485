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

// Sends every record as a native journal protocol datagram to `socket_path` (journald's is
// /run/systemd/journal/socket) instead of choosing by JOURNAL_STREAM; empty restores the default.
// Tests point it at a datagram socket of their own to read the fields back.
void set_journal_socket(const std::string& socket_path);

// One record in the native journal protocol: "KEY=value\n" per field, or "KEY\n" + 64-bit
// little-endian length + value + "\n" when the value holds a newline.
std::string encode_journal_record(const Fields& fields);

void write(Level level, const std::string& message, const Fields& fields = {});

inline void debug(const std::string& m, const Fields& f = {}) { write(Level::debug, m, f); }
inline void info(const std::string& m, const Fields& f = {}) { write(Level::info, m, f); }
inline void notice(const std::string& m, const Fields& f = {}) { write(Level::notice, m, f); }
inline void warning(const std::string& m, const Fields& f = {}) { write(Level::warning, m, f); }
inline void error(const std::string& m, const Fields& f = {}) { write(Level::error, m, f); }

}  // namespace ballast::log
