// A stand-in for journald in tests: a unix datagram socket in a temp dir that common/log is
// pointed at (log::set_journal_socket), decoding the native protocol of each record it got.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast::testing {

using JournalRecord = std::multimap<std::string, std::string>;

// Native protocol: "KEY=value\n", or "KEY\n" + 64-bit LE length + bytes + "\n".
inline JournalRecord decode_journal_record(const std::string& d) {
  JournalRecord r;
  size_t i = 0;
  while (i < d.size()) {
    size_t nl = d.find('\n', i);
    if (nl == std::string::npos) break;
    std::string line = d.substr(i, nl - i);
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      r.emplace(line.substr(0, eq), line.substr(eq + 1));
      i = nl + 1;
      continue;
    }
    uint64_t len = 0;
    for (int b = 0; b < 8; ++b) len |= static_cast<uint64_t>(static_cast<unsigned char>(d[nl + 1 + b])) << (8 * b);
    r.emplace(line, d.substr(nl + 9, len));
    i = nl + 9 + len + 1;
  }
  return r;
}

class JournalCapture {
 public:
  JournalCapture() {
    dir_ = *make_temp_dir("ballast-journal");
    path_ = dir_ + "/socket";
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    bound_ = fd_ && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    log::set_journal_socket(path_);
  }
  ~JournalCapture() {
    log::set_journal_socket("");
    (void)remove_tree(dir_);
  }
  bool bound() const { return bound_; }
  // Every record received since the last call.
  std::vector<JournalRecord> take() {
    std::vector<JournalRecord> out;
    std::string buf(1 << 16, '\0');
    while (true) {
      ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) break;
      out.push_back(decode_journal_record(buf.substr(0, static_cast<size_t>(n))));
    }
    return out;
  }

 private:
  std::string dir_, path_;
  UniqueFd fd_;
  bool bound_ = false;
};

inline std::string field(const JournalRecord& r, const std::string& key) {
  auto it = r.find(key);
  return it == r.end() ? std::string("<absent>") : it->second;
}

}  // namespace ballast::testing
