#include "common/log.hpp"

#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace ballast::log {

namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::info)};

bool stderr_is_journal() {
  static const bool is_journal = [] {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
  }();
  return is_journal;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::notice: return "notice";
    case Level::warning: return "warning";
    case Level::error: return "error";
  }
  return "info";
}

}  // namespace

void set_min_level(Level level) { g_min_level = static_cast<int>(level); }

void write(Level level, const std::string& message, const Fields& fields) {
  if (static_cast<int>(level) > g_min_level.load()) return;
  if (stderr_is_journal()) {
    std::vector<std::string> storage;
    storage.push_back("MESSAGE=" + message);
    storage.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
    storage.push_back("SYSLOG_IDENTIFIER=ballast");
    for (const auto& [k, v] : fields) storage.push_back(k + "=" + v);
    std::vector<iovec> iov;
    for (auto& s : storage) iov.push_back({s.data(), s.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) == 0) return;
  }
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::string line = "ballast: ";
  if (level != Level::info && level != Level::notice) {
    line += level_name(level);
    line += ": ";
  }
  line += message;
  for (const auto& [k, v] : fields) {
    if (k == "MESSAGE_ID") continue;
    line += " " + k + "=" + v;
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace ballast::log
