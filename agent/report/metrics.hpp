// Prometheus metrics of the agent in the text exposition format 0.0.4: the flow's state, the
// last check, bytes downloaded, updates, rollbacks, health failures and the booted version.
// Fed as an AgentObserver (on the daemon's event-loop thread), served over HTTP/1.0 on a unix
// socket from that same sd-event loop (`curl --unix-socket S http://localhost/metrics`), and
// optionally written to a node_exporter textfile. Counters live in the state directory so a
// restart does not reset them (Prometheus would read a reset as a rollover anyway, but the
// totals are also what an operator reads).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <systemd/sd-event.h>

#include "agent/api.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/result.hpp"

namespace ballast::agent::report {

struct MetricsOptions {
  std::string state_file;  // e.g. <state>/metrics.json; required
  std::string textfile;    // node_exporter textfile (…/ballast.prom); empty: none
};

MetricsOptions metrics_options_from_config(const Config& config, const std::string& state_dir);

struct MetricsCounters {
  std::string state = "idle";
  int64_t last_check = 0;  // unix seconds; 0: never
  uint64_t downloaded_bytes = 0;
  uint64_t updates = 0;          // updates committed
  uint64_t rollbacks = 0;        // updates rolled back
  uint64_t health_failures = 0;  // trial boots that failed their health checks
  std::string booted;            // the version running
};

class Metrics final : public AgentObserver {
 public:
  // Loads the saved counters (a missing file is a fresh start; a corrupt one is an error).
  static Result<std::unique_ptr<Metrics>> open(MetricsOptions options, const Clock& clock);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // AgentObserver. A transition saves the counters (and the textfile): leaving `checking` sets
  // the last check, entering `committed` counts an update, `rolled-back` a rollback,
  // `reverting` a health failure; the bytes of `staging` progress are added as they grow.
  void on_transition(const std::string& from, const std::string& to) override;
  void on_progress(const Progress& progress) override;

  void set_booted(const std::string& version);  // saves
  // Where ballast_report_events_dropped_total comes from (the outbox keeps the count); asked on
  // the loop thread at every exposition.
  void count_dropped_events_from(std::function<uint64_t()> source) { dropped_events_ = std::move(source); }
  Status save();

  const MetricsCounters& counters() const { return c_; }
  std::string exposition() const;  // the text a scrape gets

  // Listens on `socket_path` (a stale socket there is replaced; mode 0666, since metrics are
  // read-only) and answers each connection's GET from `event`'s loop. Once only.
  Status attach(sd_event* event, const std::string& socket_path);
  void detach();

 private:
  struct Connection;
  Metrics(MetricsOptions options, const Clock& clock);
  static int on_accept(sd_event_source* s, int fd, uint32_t revents, void* userdata);
  static int on_connection_io(sd_event_source* s, int fd, uint32_t revents, void* userdata);
  static int on_connection_timeout(sd_event_source* s, uint64_t usec, void* userdata);
  void close_connection(int fd);
  void handle_io(Connection& c, uint32_t revents);

  MetricsOptions options_;
  const Clock& clock_;
  MetricsCounters c_;
  uint64_t progress_seen_ = 0;  // bytes of the current staging already counted
  std::function<uint64_t()> dropped_events_;

  sd_event* event_ = nullptr;
  sd_event_source* listen_source_ = nullptr;
  int listen_fd_ = -1;
  std::string socket_path_;
  std::map<int, std::unique_ptr<Connection>> connections_;
};

// The HTTP/1.0 reply to one request head ("GET /metrics HTTP/1.1\r\n…"): 200 with the text for
// GET / or /metrics, 404 for another path, 405 for another method, 400 for garbage.
std::string metrics_http_reply(const std::string& request_head, const std::string& body);

}  // namespace ballast::agent::report
