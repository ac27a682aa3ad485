#include "common/log.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace ballast::log {

namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::info)};

std::mutex g_journal_mu;
std::string g_journal_socket;  // guarded by g_journal_mu

// Best effort like any logging: false when the record could not be handed over.
bool send_datagram(const std::string& socket_path, const std::string& record) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t n = ::sendto(fd, record.data(), record.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                       sizeof addr);
  ::close(fd);
  return n == static_cast<ssize_t>(record.size());
}

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

void set_journal_socket(const std::string& socket_path) {
  std::lock_guard lock(g_journal_mu);
  g_journal_socket = socket_path;
}

std::string encode_journal_record(const Fields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    out += k;
    if (v.find('\n') == std::string::npos) {
      out += '=';
      out += v;
    } else {
      out += '\n';
      uint64_t len = v.size();
      for (int i = 0; i < 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
      out += v;
    }
    out += '\n';
  }
  return out;
}

void write(Level level, const std::string& message, const Fields& fields) {
  if (static_cast<int>(level) > g_min_level.load()) return;
  std::string journal_socket;
  {
    std::lock_guard lock(g_journal_mu);
    journal_socket = g_journal_socket;
  }
  if (!journal_socket.empty()) {
    Fields all = {{"MESSAGE", message},
                  {"PRIORITY", std::to_string(static_cast<int>(level))},
                  {"SYSLOG_IDENTIFIER", "ballast"}};
    all.insert(all.end(), fields.begin(), fields.end());
    if (send_datagram(journal_socket, encode_journal_record(all))) return;
  } else if (stderr_is_journal()) {
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
