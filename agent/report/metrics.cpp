#include "agent/report/metrics.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/update_flow.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast::agent::report {

using nlohmann::json;

namespace {

constexpr size_t kMaxRequestHead = 8192;
constexpr size_t kMaxConnections = 16;
constexpr uint64_t kConnectionTimeoutUsec = 10'000'000;

// Label values escape backslash, double quote and newline (exposition format 0.0.4).
std::string label_value(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

void family(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

std::string status_line(int code) {
  switch (code) {
    case 200: return "200 OK";
    case 400: return "400 Bad Request";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
  }
  return std::to_string(code);
}

}  // namespace

struct Metrics::Connection {
  Metrics* owner = nullptr;
  UniqueFd fd;
  sd_event_source* io = nullptr;
  sd_event_source* timer = nullptr;
  std::string in;
  std::string out;
  size_t written = 0;
  bool replying = false;
};

MetricsOptions metrics_options_from_config(const Config& config, const std::string& state_dir) {
  return MetricsOptions{path_join(state_dir, "metrics.json"), config.get_string("report.metrics_textfile")};
}

Result<std::unique_ptr<Metrics>> Metrics::open(MetricsOptions options, const Clock& clock) {
  if (options.state_file.empty()) return fail("metrics.config", "the metrics state file is not set");
  std::unique_ptr<Metrics> m(new Metrics(std::move(options), clock));
  if (path_exists(m->options_.state_file)) {
    auto text = BALLAST_TRY(read_file(m->options_.state_file, 1 << 16));
    json j = json::parse(text, nullptr, false);
    auto u64 = [&](const char* k, uint64_t& out) {
      if (!j.contains(k) || !j[k].is_number_unsigned()) return false;
      out = j[k].get<uint64_t>();
      return true;
    };
    bool good = j.is_object() && j.contains("state") && j["state"].is_string() && j.contains("booted") &&
                j["booted"].is_string() && j.contains("last_check") && j["last_check"].is_number_integer() &&
                u64("downloaded_bytes", m->c_.downloaded_bytes) && u64("updates", m->c_.updates) &&
                u64("rollbacks", m->c_.rollbacks) && u64("health_failures", m->c_.health_failures);
    if (!good) return fail("metrics.corrupt", m->options_.state_file + " is not a saved metrics file");
    m->c_.state = j["state"].get<std::string>();
    m->c_.booted = j["booted"].get<std::string>();
    m->c_.last_check = j["last_check"].get<int64_t>();
  }
  return m;
}

Metrics::Metrics(MetricsOptions options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}

Metrics::~Metrics() { detach(); }

Status Metrics::save() {
  json j = {{"state", c_.state},         {"last_check", c_.last_check}, {"downloaded_bytes", c_.downloaded_bytes},
            {"updates", c_.updates},     {"rollbacks", c_.rollbacks},   {"health_failures", c_.health_failures},
            {"booted", c_.booted}};
  BALLAST_CHECK(write_file_atomic(options_.state_file, j.dump() + "\n", 0644));
  if (!options_.textfile.empty())
    BALLAST_CHECK(with_context(write_file_atomic(options_.textfile, exposition(), 0644), "writing the metrics textfile"));
  return ok();
}

void Metrics::on_transition(const std::string& from, const std::string& to) {
  c_.state = to;
  if (from == "checking")
    c_.last_check = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  if (to == "staging") progress_seen_ = 0;
  if (to == "committed") ++c_.updates;
  if (to == "rolled-back") ++c_.rollbacks;
  if (to == "reverting") ++c_.health_failures;
  if (auto st = save(); !st) log::error("cannot save the metrics: " + st.error().describe());
}

void Metrics::on_progress(const Progress& progress) {
  // Progress counts from zero for each staging; a smaller figure means a new one began.
  if (progress.bytes < progress_seen_) progress_seen_ = 0;
  c_.downloaded_bytes += progress.bytes - progress_seen_;
  progress_seen_ = progress.bytes;
}

void Metrics::set_booted(const std::string& version) {
  c_.booted = version;
  if (auto st = save(); !st) log::error("cannot save the metrics: " + st.error().describe());
}

std::string Metrics::exposition() const {
  std::ostringstream o;
  family(o, "ballast_state", "gauge", "The update flow's state: 1 for the current one, 0 for the others.");
  bool known = false;
  for (int i = 0; i <= static_cast<int>(FlowState::failed); ++i) {
    std::string name = to_string(static_cast<FlowState>(i));
    known = known || name == c_.state;
    o << "ballast_state{state=\"" << name << "\"} " << (name == c_.state ? 1 : 0) << '\n';
  }
  if (!known) o << "ballast_state{state=\"" << label_value(c_.state) << "\"} 1\n";
  family(o, "ballast_last_check_timestamp_seconds", "gauge", "When the repository was last checked (0: never).");
  o << "ballast_last_check_timestamp_seconds " << c_.last_check << '\n';
  family(o, "ballast_downloaded_bytes_total", "counter", "Bytes of releases downloaded.");
  o << "ballast_downloaded_bytes_total " << c_.downloaded_bytes << '\n';
  family(o, "ballast_updates_total", "counter", "Updates committed.");
  o << "ballast_updates_total " << c_.updates << '\n';
  family(o, "ballast_rollbacks_total", "counter", "Updates rolled back.");
  o << "ballast_rollbacks_total " << c_.rollbacks << '\n';
  family(o, "ballast_health_failures_total", "counter", "Trial boots that failed their health checks.");
  o << "ballast_health_failures_total " << c_.health_failures << '\n';
  family(o, "ballast_report_events_dropped_total", "counter",
         "Reports (heartbeats, check results) dropped to keep the event outbox in its bounds.");
  o << "ballast_report_events_dropped_total " << (dropped_events_ ? dropped_events_() : 0) << '\n';
  if (!c_.booted.empty()) {
    family(o, "ballast_booted_info", "gauge", "The version running now.");
    o << "ballast_booted_info{version=\"" << label_value(c_.booted) << "\"} 1\n";
  }
  return o.str();
}

std::string metrics_http_reply(const std::string& request_head, const std::string& body) {
  int code = 200;
  std::istringstream first(request_head.substr(0, request_head.find('\n')));
  std::string method, target, version;
  first >> method >> target >> version;
  if (method.empty() || target.empty() || version.rfind("HTTP/1.", 0) != 0) {
    code = 400;
  } else if (method != "GET" && method != "HEAD") {
    code = 405;
  } else {
    std::string path = target.substr(0, target.find('?'));
    if (path != "/" && path != "/metrics") code = 404;
  }
  std::string payload = code == 200 ? body : status_line(code) + "\n";
  std::string reply = "HTTP/1.0 " + status_line(code) + "\r\n";
  reply += code == 200 ? "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" : "Content-Type: text/plain\r\n";
  if (code == 405) reply += "Allow: GET, HEAD\r\n";
  reply += "Content-Length: " + std::to_string(payload.size()) + "\r\nConnection: close\r\n\r\n";
  if (method != "HEAD") reply += payload;
  return reply;
}

Status Metrics::attach(sd_event* event, const std::string& socket_path) {
  if (event_) return fail("metrics.attached", "the metrics server is already attached");
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
    return fail("metrics.socket", "bad metrics socket path '" + socket_path + "'");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);

  struct stat st;
  if (::lstat(socket_path.c_str(), &st) == 0) {
    // Only a socket is ours to replace (left by an earlier run); anything else is a mistake.
    if (!S_ISSOCK(st.st_mode)) return fail("metrics.socket", socket_path + " exists and is not a socket");
    if (::unlink(socket_path.c_str()) != 0) return fail_errno("metrics.socket", errno, "cannot remove " + socket_path);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("metrics.socket", errno, "cannot create a unix socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail_errno("metrics.socket", errno, "cannot bind " + socket_path);
  if (::chmod(socket_path.c_str(), 0666) != 0 || ::listen(fd.get(), 16) != 0) {
    int err = errno;
    ::unlink(socket_path.c_str());
    return fail_errno("metrics.socket", err, "cannot listen on " + socket_path);
  }
  int r = sd_event_add_io(event, &listen_source_, fd.get(), EPOLLIN, &Metrics::on_accept, this);
  if (r < 0) {
    ::unlink(socket_path.c_str());
    return fail_errno("metrics.socket", -r, "cannot watch " + socket_path);
  }
  event_ = sd_event_ref(event);
  listen_fd_ = fd.release();
  socket_path_ = socket_path;
  return ok();
}

void Metrics::detach() {
  while (!connections_.empty()) close_connection(connections_.begin()->first);
  if (listen_source_) listen_source_ = sd_event_source_disable_unref(listen_source_);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(socket_path_.c_str());
  }
  if (event_) event_ = sd_event_unref(event_);
}

int Metrics::on_accept(sd_event_source*, int fd, uint32_t, void* userdata) {
  auto* self = static_cast<Metrics*>(userdata);
  while (true) {
    UniqueFd conn(::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
        log::warning(std::string("metrics: accept failed: ") + std::strerror(errno));
      return 0;
    }
    // A scraper needs one connection; more at once is a misbehaving client, not worth memory.
    if (self->connections_.size() >= kMaxConnections) continue;
    auto c = std::make_unique<Connection>();
    c->owner = self;
    int cfd = conn.get();
    c->fd = std::move(conn);
    if (sd_event_add_io(self->event_, &c->io, cfd, EPOLLIN, &Metrics::on_connection_io, c.get()) < 0) continue;
    if (sd_event_add_time_relative(self->event_, &c->timer, CLOCK_MONOTONIC, kConnectionTimeoutUsec, 0,
                                   &Metrics::on_connection_timeout, c.get()) < 0) {
      sd_event_source_disable_unref(c->io);
      continue;
    }
    self->connections_[cfd] = std::move(c);
  }
}

int Metrics::on_connection_io(sd_event_source*, int, uint32_t revents, void* userdata) {
  auto* c = static_cast<Connection*>(userdata);
  c->owner->handle_io(*c, revents);
  return 0;
}

int Metrics::on_connection_timeout(sd_event_source*, uint64_t, void* userdata) {
  auto* c = static_cast<Connection*>(userdata);
  c->owner->close_connection(c->fd.get());
  return 0;
}

void Metrics::handle_io(Connection& c, uint32_t revents) {
  int fd = c.fd.get();
  if (!c.replying) {
    char buf[2048];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (c.in.size() > kMaxRequestHead) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      // EOF or error before a full head: a client that gave up.
      if (c.in.find("\n\r\n") == std::string::npos && c.in.find("\n\n") == std::string::npos) {
        close_connection(fd);
        return;
      }
      break;
    }
    bool complete = c.in.find("\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos;
    if (!complete && c.in.size() <= kMaxRequestHead) return;
    c.out = metrics_http_reply(complete ? c.in : std::string(), exposition());
    c.replying = true;
    sd_event_source_set_io_events(c.io, EPOLLOUT);
    revents |= EPOLLOUT;
  }
  if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    while (c.written < c.out.size()) {
      ssize_t n = ::send(fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      break;  // the client went away
    }
    close_connection(fd);
  }
}

void Metrics::close_connection(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  auto& c = *it->second;
  if (c.io) c.io = sd_event_source_disable_unref(c.io);
  if (c.timer) c.timer = sd_event_source_disable_unref(c.timer);
  connections_.erase(it);
}

}  // namespace ballast::agent::report
