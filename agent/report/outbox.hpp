// The durable event outbox: every report becomes a CloudEvents 1.0 structured-mode JSON event
// written to its own file in the state directory before anything is sent, and is deleted only
// after the sink answered 2xx. A crash between the POST and the delete re-sends the same event
// with the same id, which a CloudEvents sink treats as a duplicate (source + id are the key).
// The library never sleeps: after a failure flush() stops and next_retry() says when the daemon
// should arm its timer.
//
// Bounded without losing what the fleet must learn: over max_events/max_bytes the oldest
// heartbeat, then the oldest check result make room (see droppable_event_type); a lifecycle
// event (staged, rebooting, booted, health.*, committed, rolled-back, error) is never dropped,
// so an outbox holding only those grows past its bounds, and a droppable event that finds
// nothing to displace is dropped itself. Every drop is counted, in total and by type.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api.hpp"
#include "agent/update_flow.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/result.hpp"
#include "repository/http.hpp"

namespace ballast::agent::report {

struct OutboxOptions {
  std::string dir;                // the outbox directory, e.g. <state>/outbox; created when missing
  std::string node_id;            // source "ballast://<node id>", id "<node id>-<sequence>"
  std::string endpoint;           // the sink; empty: reporting is off, nothing is written or sent
  // How each POST is authorized (agent/credentials.hpp, report.auth); null: not at all. A 401
  // asks it to refresh and counts as a failed delivery (retried after the backoff).
  std::shared_ptr<repository::CredentialProvider> credentials;
  // report.format = "batch": pending events go oldest first as one CloudEvents JSON array
  // (application/cloudevents-batch+json, as Event Grid takes them) of at most batch_max_events
  // events and batch_max_bytes bytes (a single larger event goes alone). A 413 halves the batch;
  // a single event refused with 413 can never be delivered and is moved to <dir>/rejected with a
  // warning, so it does not block the events behind it.
  bool batch = false;
  size_t batch_max_events = 100;
  uint64_t batch_max_bytes = 1 << 20;
  size_t max_events = 1000;
  uint64_t max_bytes = 4 << 20;
  std::chrono::milliseconds backoff_initial{std::chrono::seconds(2)};
  std::chrono::milliseconds backoff_max{std::chrono::minutes(15)};
  std::optional<uint64_t> jitter_seed;  // tests fix it; otherwise std::random_device
};

// report.* from the configuration; `state_dir`/outbox is the directory.
OutboxOptions outbox_options_from_config(const Config& config, const std::string& state_dir,
                                         const std::string& node_id);
// The HTTP client settings for the sink: the client certificate and key of report.*.
repository::HttpSettings report_http_settings(const Config& config);

struct FlushResult {
  size_t sent = 0;         // events the sink accepted (2xx) and that were deleted
  size_t pending = 0;      // events still in the outbox
  size_t quarantined = 0;  // unreadable files moved aside
  size_t rejected = 0;     // events the sink refused as too large even alone, moved to rejected/
  bool deferred = false;   // nothing tried: a backoff is running (see next_retry) or no endpoint
  std::string last_error;  // why the last attempt failed; empty when it did not
};

class Outbox final : public Reporter {
 public:
  // Reads the directory: sequence number, drop count, pending events (oldest first). Leftover
  // temporary files are removed; a file that is not a valid event is moved to <dir>/quarantine.
  static Result<std::unique_ptr<Outbox>> open(OutboxOptions options, repository::HttpClient& http,
                                              const Clock& clock);

  // Reporter: enqueue() with the failure logged, since the flow must not stop for reporting.
  void report(const std::string& type, const nlohmann::json& data) override;

  // A dev.ballast.heartbeat with heartbeat_data(status, dropped()); the daemon calls it every
  // report.heartbeat_interval.
  void report_heartbeat(const AgentStatus& status);

  // Builds the event (type "dev.ballast.<type>", subject = data["version"] when it is a string,
  // data["from"] for "rolled-back")
  // and writes it durably, dropping droppable events when the outbox is over its bounds (see
  // above). Returns the event as written; without an endpoint, as it would have been written.
  Result<nlohmann::json> enqueue(const std::string& type, const nlohmann::json& data);

  // POSTs pending events oldest first until one fails or none is left. While a backoff runs
  // (now < next_retry()) nothing is sent unless `force`.
  Result<FlushResult> flush(bool force = false);

  // When the daemon should call flush() next (monotonic clock): nullopt when nothing is pending
  // or there is no endpoint; now or earlier when a flush may happen at once.
  std::optional<std::chrono::steady_clock::time_point> next_retry() const;

  size_t pending() const { return events_.size(); }
  uint64_t pending_bytes() const;
  uint64_t dropped() const { return dropped_; }  // events dropped for the bounds, ever
  // The same by short type ("heartbeat", "checked"); kept in meta.json with the total.
  const std::map<std::string, uint64_t>& dropped_by_type() const { return dropped_by_type_; }
  int consecutive_failures() const { return failures_; }
  const std::string& dir() const { return options_.dir; }

 private:
  struct Entry {
    uint64_t seq;
    std::string type;  // the short type ("heartbeat")
    std::string file;  // name inside dir
    uint64_t bytes;
  };
  Outbox(OutboxOptions options, repository::HttpClient& http, const Clock& clock);
  Status load();
  Status save_meta();
  // Makes room for an incoming event; false when the incoming (droppable) event is the one to drop.
  Result<bool> drop_for(const std::string& incoming_type, uint64_t incoming_bytes);
  void count_drop(const std::string& type, const std::string& what);
  Status remove_entry(size_t index);
  void quarantine(const std::string& file, const std::string& why);
  // Moves `file` into the subdirectory `subdir`; false (logged) when it cannot.
  bool move_aside(const char* subdir, const std::string& file);
  Result<std::vector<std::string>> headers(const char* content_type) const;
  // POSTs `body` authorized (a 401 asks the credentials to refresh); an error when the request
  // could not be authorized or sent.
  Result<repository::HttpResponse> post(const std::string& body, const char* content_type);
  Status flush_batches(FlushResult& r);
  void note_failure(const std::string& why);

  OutboxOptions options_;
  repository::HttpClient& http_;
  const Clock& clock_;
  std::vector<Entry> events_;  // oldest first
  uint64_t next_seq_ = 1;
  uint64_t dropped_ = 0;
  std::map<std::string, uint64_t> dropped_by_type_;
  int failures_ = 0;
  std::chrono::steady_clock::time_point retry_at_{};
  std::mt19937_64 rng_;
};

// How many of the oldest pending events (their stored sizes, oldest first) go into the next
// batch: as many as fit in `max_events` and in `max_bytes` as a JSON array, at least one.
size_t batch_size(const std::vector<uint64_t>& event_bytes, size_t max_events, uint64_t max_bytes);

// Whether the outbox may drop an event of this short type to stay in its bounds: heartbeats and
// check results (the next one says the same); never a lifecycle event.
bool droppable_event_type(const std::string& type);

// The data of a dev.ballast.heartbeat event: the agent's status, plus the outbox's drop count so
// the fleet learns that events were lost.
nlohmann::json heartbeat_data(const AgentStatus& status, uint64_t dropped_events);

// "2026-01-01T00:00:00.250Z": RFC 3339 in UTC with milliseconds.
std::string rfc3339(std::chrono::system_clock::time_point t);

}  // namespace ballast::agent::report
