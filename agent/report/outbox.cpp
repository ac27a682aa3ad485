#include "agent/report/outbox.hpp"

#include <cerrno>
#include <cinttypes>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <algorithm>

#include "agent/credentials.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast::agent::report {

using nlohmann::json;

namespace {

constexpr const char* kMetaFile = "meta.json";
constexpr const char* kQuarantine = "quarantine";
constexpr const char* kRejected = "rejected";
constexpr const char* kStructured = "application/cloudevents+json; charset=utf-8";
constexpr const char* kBatch = "application/cloudevents-batch+json; charset=utf-8";
constexpr const char* kTypePrefix = "dev.ballast.";

// "<20-digit sequence>.<type>.json": the fixed width makes a lexical listing the sending order.
std::string event_file_name(uint64_t seq, const std::string& type) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64, seq);
  return std::string(buf) + "." + type + ".json";
}

struct ParsedName {
  uint64_t seq;
  std::string type;
};

std::optional<ParsedName> parse_event_file_name(const std::string& name) {
  constexpr size_t kDigits = 20;
  const std::string suffix = ".json";
  if (name.size() <= kDigits + 1 + suffix.size() || name[kDigits] != '.') return std::nullopt;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  uint64_t seq = 0;
  for (size_t i = 0; i < kDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    seq = seq * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return ParsedName{seq, name.substr(kDigits + 1, name.size() - kDigits - 1 - suffix.size())};
}

// A type names a file, so it is kept to the characters CloudEvents types use anyway.
bool valid_type(const std::string& type) {
  if (type.empty() || type.size() > 64) return false;
  return std::all_of(type.begin(), type.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// What a stored event must have to be sent: the required CloudEvents attributes.
Status check_event(const std::string& text, const ParsedName& name) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("report.corrupt-event", "not a JSON object");
  for (const char* key : {"specversion", "id", "source", "type"}) {
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
      return fail("report.corrupt-event", std::string("missing or empty '") + key + "'");
  }
  if (j["specversion"] != "1.0") return fail("report.corrupt-event", "specversion is not 1.0");
  if (j["type"] != kTypePrefix + name.type) return fail("report.corrupt-event", "type does not match the file name");
  return ok();
}

bool is_2xx(long status) { return status >= 200 && status < 300; }

}  // namespace

std::string rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto ms = duration_cast<milliseconds>(t - secs).count();
  std::time_t tt = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

OutboxOptions outbox_options_from_config(const Config& config, const std::string& state_dir,
                                         const std::string& node_id) {
  OutboxOptions o;
  o.dir = path_join(state_dir, "outbox");
  o.node_id = node_id;
  o.endpoint = config.get_string("report.endpoint");
  o.credentials = credentials_from_config(config, "report");
  o.batch = config.get_string("report.format") == "batch";
  o.batch_max_events = static_cast<size_t>(config.get_int("report.batch_max_events"));
  o.batch_max_bytes = static_cast<uint64_t>(config.get_int("report.batch_max_bytes"));
  return o;
}

repository::HttpSettings report_http_settings(const Config& config) {
  repository::HttpSettings s;
  s.ca_bundle = config.get_string("report.ca_bundle");
  s.client_cert = config.get_string("report.client_cert");
  s.client_key = config.get_string("report.client_key");
  // The outbox does its own retrying with backoff; the client must not block the daemon's loop
  // retrying underneath it.
  s.retries = 0;
  return s;
}

json heartbeat_data(const AgentStatus& status, uint64_t dropped_events) {
  json j = to_json(status);
  j["droppedEvents"] = dropped_events;
  if (!status.booted.empty()) j["version"] = status.booted;
  return j;
}

Outbox::Outbox(OutboxOptions options, repository::HttpClient& http, const Clock& clock)
    : options_(std::move(options)), http_(http), clock_(clock) {
  rng_.seed(options_.jitter_seed ? *options_.jitter_seed : std::random_device{}());
}

Result<std::unique_ptr<Outbox>> Outbox::open(OutboxOptions options, repository::HttpClient& http,
                                             const Clock& clock) {
  if (options.dir.empty()) return fail("report.config", "the outbox directory is not set");
  if (options.node_id.empty()) return fail("report.config", "the node id is not set");
  if (options.max_events == 0 || options.max_bytes == 0)
    return fail("report.config", "the outbox bounds must be positive");
  std::unique_ptr<Outbox> box(new Outbox(std::move(options), http, clock));
  BALLAST_CHECK(with_context(box->load(), "opening the event outbox " + box->options_.dir));
  return box;
}

Status Outbox::load() {
  BALLAST_CHECK(make_dirs(options_.dir, 0700));
  auto names = BALLAST_TRY(list_dir(options_.dir));
  std::sort(names.begin(), names.end());

  bool meta_ok = false;
  if (std::find(names.begin(), names.end(), kMetaFile) != names.end()) {
    auto text = BALLAST_TRY(read_file(path_join(options_.dir, kMetaFile), 1 << 16));
    json m = json::parse(text, nullptr, false);
    if (m.is_object() && m.contains("next_seq") && m["next_seq"].is_number_unsigned() && m.contains("dropped") &&
        m["dropped"].is_number_unsigned()) {
      next_seq_ = m["next_seq"].get<uint64_t>();
      dropped_ = m["dropped"].get<uint64_t>();
      // Older outboxes kept only the total.
      if (m.contains("dropped_by_type") && m["dropped_by_type"].is_object())
        for (const auto& [type, n] : m["dropped_by_type"].items())
          if (n.is_number_unsigned()) dropped_by_type_[type] = n.get<uint64_t>();
      meta_ok = true;
    } else {
      quarantine(kMetaFile, "the sequence file is not valid");
      // Ids already sent must never be reused: without the saved sequence, the wall clock in
      // milliseconds is larger than any sequence this outbox can have reached.
      next_seq_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            clock_.now().time_since_epoch())
                                            .count());
    }
  }

  for (const auto& name : names) {
    if (name == kMetaFile || name == kQuarantine || name == kRejected) continue;
    std::string path = path_join(options_.dir, name);
    if (name[0] == '.') {
      // A temporary file of a write that never finished: the event was never reported.
      BALLAST_CHECK(remove_if_exists(path));
      continue;
    }
    auto parsed = parse_event_file_name(name);
    if (!parsed) {
      quarantine(name, "not an event file name");
      continue;
    }
    auto text = read_file(path, options_.max_bytes + 1);
    if (!text) {
      quarantine(name, text.error().describe());
      continue;
    }
    if (auto st = check_event(*text, *parsed); !st) {
      quarantine(name, st.error().message);
      continue;
    }
    events_.push_back({parsed->seq, parsed->type, name, text->size()});
    next_seq_ = std::max(next_seq_, parsed->seq + 1);
  }
  if (!meta_ok) BALLAST_CHECK(save_meta());
  return ok();
}

Status Outbox::save_meta() {
  json m = {{"next_seq", next_seq_}, {"dropped", dropped_}, {"dropped_by_type", dropped_by_type_}};
  return write_file_atomic(path_join(options_.dir, kMetaFile), m.dump() + "\n", 0600);
}

bool Outbox::move_aside(const char* subdir, const std::string& file) {
  std::string dir = path_join(options_.dir, subdir);
  std::string from = path_join(options_.dir, file);
  if (auto st = make_dirs(dir, 0700); !st) {
    log::error("cannot create the outbox's " + std::string(subdir) + " directory: " + st.error().describe());
    return false;
  }
  if (::rename(from.c_str(), path_join(dir, file).c_str()) != 0) {
    log::error("cannot move " + from + " to " + dir + ": " + std::strerror(errno));
    return false;
  }
  (void)fsync_dir(options_.dir);
  return true;
}

void Outbox::quarantine(const std::string& file, const std::string& why) {
  if (move_aside(kQuarantine, file))
    log::warning("outbox: moved unreadable " + path_join(options_.dir, file) + " to " +
                     path_join(path_join(options_.dir, kQuarantine), file) + ": " + why,
                 {{"BALLAST_OUTBOX_FILE", file}});
}

uint64_t Outbox::pending_bytes() const {
  uint64_t total = 0;
  for (const auto& e : events_) total += e.bytes;
  return total;
}

Status Outbox::remove_entry(size_t index) {
  std::string path = path_join(options_.dir, events_[index].file);
  BALLAST_CHECK(remove_if_exists(path));
  BALLAST_CHECK(fsync_dir(options_.dir));
  events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(index));
  return ok();
}

bool droppable_event_type(const std::string& type) { return type == "heartbeat" || type == "checked"; }

void Outbox::count_drop(const std::string& type, const std::string& what) {
  ++dropped_;
  ++dropped_by_type_[type];
  log::warning("outbox full: dropping " + what + " (" + std::to_string(dropped_) + " dropped so far)",
               {{"BALLAST_OUTBOX_DROPPED_TYPE", type}});
}

Result<bool> Outbox::drop_for(const std::string& incoming_type, uint64_t incoming_bytes) {
  uint64_t bytes = pending_bytes();
  auto over = [&] { return events_.size() + 1 > options_.max_events || bytes + incoming_bytes > options_.max_bytes; };
  bool keep_incoming = true;
  size_t dropped_now = 0;
  while (over()) {
    // Heartbeats first (the next one says the same and more), then check results; both oldest first.
    auto oldest = [&](const char* type) {
      return std::find_if(events_.begin(), events_.end(), [&](const Entry& e) { return e.type == type; });
    };
    auto it = oldest("heartbeat");
    if (it == events_.end()) it = oldest("checked");
    if (it == events_.end()) {
      if (droppable_event_type(incoming_type)) {
        count_drop(incoming_type, "the new " + incoming_type + " event");
        keep_incoming = false;
        ++dropped_now;
      } else {
        log::warning("outbox full of lifecycle events: keeping the " + incoming_type + " event beyond the bounds");
      }
      break;
    }
    Entry victim = *it;
    bytes -= victim.bytes;
    BALLAST_CHECK(remove_entry(static_cast<size_t>(it - events_.begin())));
    count_drop(victim.type, "event " + victim.file);
    ++dropped_now;
  }
  if (dropped_now) BALLAST_CHECK(save_meta());
  return keep_incoming;
}

Result<json> Outbox::enqueue(const std::string& type, const json& data) {
  if (!valid_type(type)) return fail("report.bad-type", "event type '" + type + "' is not [a-z0-9.-]+");
  uint64_t seq = next_seq_;
  json event = {
      {"specversion", "1.0"},
      {"id", options_.node_id + "-" + std::to_string(seq)},
      {"source", "ballast://" + options_.node_id},
      {"type", kTypePrefix + type},
      {"time", rfc3339(clock_.now())},
      {"datacontenttype", "application/json"},
  };
  // The subject is the version the event is about; a rolled-back event names it "from" (the
  // version left), as the update flow sends it.
  const char* subject_key = type == "rolled-back" ? "from" : "version";
  if (data.is_object() && data.contains(subject_key) && data[subject_key].is_string() &&
      !data[subject_key].get<std::string>().empty())
    event["subject"] = data[subject_key];
  event["data"] = data;
  std::string text = event.dump() + "\n";
  if (text.size() > options_.max_bytes)
    return fail("report.too-large", "a " + type + " event of " + std::to_string(text.size()) +
                                        " bytes is larger than the outbox");

  // Reporting is off: nothing is kept for a sink that will never be asked.
  if (options_.endpoint.empty()) return event;
  if (!BALLAST_TRY(drop_for(type, text.size()))) return event;
  std::string name = event_file_name(seq, type);
  // The sequence is saved before the event so a crash in between skips a number instead of
  // reusing it; load() also takes the largest file's sequence into account.
  next_seq_ = seq + 1;
  BALLAST_CHECK(save_meta());
  BALLAST_CHECK(write_file_atomic(path_join(options_.dir, name), text, 0600));
  events_.push_back({seq, type, name, text.size()});
  return event;
}

void Outbox::report_heartbeat(const AgentStatus& status) { report("heartbeat", heartbeat_data(status, dropped_)); }

void Outbox::report(const std::string& type, const json& data) {
  auto r = enqueue(type, data);
  if (!r) log::error("cannot record the " + type + " event: " + r.error().describe());
}

Result<std::vector<std::string>> Outbox::headers(const char* content_type) const {
  std::vector<std::string> h = {std::string("Content-Type: ") + content_type};
  if (options_.credentials) {
    auto auth = BALLAST_TRY(with_context(options_.credentials->authorize(), "authorizing the report"));
    h.insert(h.end(), auth.headers.begin(), auth.headers.end());
  }
  return h;
}

void Outbox::note_failure(const std::string& why) {
  ++failures_;
  using namespace std::chrono;
  // Doubling from the initial delay, capped; "equal jitter" keeps at least half of it so a
  // fleet that lost its sink at once does not come back at once.
  milliseconds d = options_.backoff_max;
  if (failures_ < 40) {
    auto grown = options_.backoff_initial * (int64_t{1} << (failures_ - 1));
    if (grown < options_.backoff_max) d = grown;
  }
  int64_t half = d.count() / 2;
  std::uniform_int_distribution<int64_t> jitter(0, d.count() - half);
  auto delay = milliseconds(half + jitter(rng_));
  retry_at_ = clock_.monotonic() + delay;
  log::warning("cannot deliver events to " + options_.endpoint + " (" + why + "); retrying in " +
               std::to_string(delay.count()) + " ms");
}

std::optional<std::chrono::steady_clock::time_point> Outbox::next_retry() const {
  if (events_.empty() || options_.endpoint.empty()) return std::nullopt;
  if (failures_ == 0) return clock_.monotonic();
  return retry_at_;
}

Result<repository::HttpResponse> Outbox::post(const std::string& body, const char* content_type) {
  auto hdrs = BALLAST_TRY(headers(content_type));
  auto resp = http_.post(options_.endpoint, body, hdrs, 1 << 16);
  if (resp && resp->status == 401 && options_.credentials) options_.credentials->refresh_after_unauthorized();
  return resp;
}

size_t batch_size(const std::vector<uint64_t>& event_bytes, size_t max_events, uint64_t max_bytes) {
  size_t n = 0;
  uint64_t bytes = 1;  // the array: '[', then each event with ',' or ']' in its stored newline's place
  while (n < event_bytes.size() && n < max_events) {
    bytes += event_bytes[n];
    if (n > 0 && bytes > max_bytes) break;
    ++n;
  }
  return std::max<size_t>(n, event_bytes.empty() ? 0 : 1);
}

Status Outbox::flush_batches(FlushResult& r) {
  size_t max_events = std::max<size_t>(1, options_.batch_max_events);
  while (!events_.empty()) {
    std::vector<uint64_t> sizes;
    for (const auto& e : events_) sizes.push_back(e.bytes);
    const size_t n = batch_size(sizes, max_events, options_.batch_max_bytes);
    std::string body = "[";
    bool quarantined = false;
    for (size_t i = 0; i < n && !quarantined; ++i) {
      const Entry& e = events_[i];
      auto text = read_file(path_join(options_.dir, e.file), options_.max_bytes + 1);
      Status valid = text ? check_event(*text, ParsedName{e.seq, e.type}) : Status(tl::unexpected(text.error()));
      if (!valid) {
        quarantine(e.file, valid.error().describe());
        events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(i));
        ++r.quarantined;
        quarantined = true;  // the batch is made again without it
        break;
      }
      while (!text->empty() && text->back() == '\n') text->pop_back();
      if (i > 0) body += ",";
      body += *text;
    }
    if (quarantined) continue;
    body += "]";
    auto resp = post(body, kBatch);
    if (resp && resp->status == 413) {
      if (n > 1) {
        max_events = n / 2;  // for the rest of this flush: the sink's limit is lower than ours
        continue;
      }
      // Even alone it is too large: no retry will ever deliver it, and it must not hold back
      // the events behind it.
      const std::string file = events_.front().file;
      if (!move_aside(kRejected, file)) {
        r.last_error = "the sink refused " + file + " as too large and it cannot be moved aside";
        note_failure(r.last_error);
        return ok();
      }
      log::warning("outbox: the sink refused event " + file + " as too large (HTTP 413) even alone; moved it to " +
                       path_join(path_join(options_.dir, kRejected), file),
                   {{"BALLAST_OUTBOX_FILE", file}});
      events_.erase(events_.begin());
      ++r.rejected;
      continue;
    }
    if (!resp || !is_2xx(resp->status)) {
      r.last_error = !resp ? resp.error().describe() : "HTTP status " + std::to_string(resp->status);
      note_failure(r.last_error);
      return ok();
    }
    failures_ = 0;
    // Only now, oldest first: a crash in between sends the rest of the batch (same ids) again.
    for (size_t i = 0; i < n; ++i) {
      BALLAST_CHECK(remove_entry(0));
      ++r.sent;
    }
  }
  return ok();
}

Result<FlushResult> Outbox::flush(bool force) {
  FlushResult r;
  if (options_.endpoint.empty() || (!force && failures_ > 0 && clock_.monotonic() < retry_at_)) {
    r.deferred = true;
    r.pending = events_.size();
    return r;
  }
  if (options_.batch) {
    BALLAST_CHECK(flush_batches(r));
    r.pending = events_.size();
    return r;
  }
  while (!events_.empty()) {
    const Entry e = events_.front();
    auto parsed = ParsedName{e.seq, e.type};
    auto text = read_file(path_join(options_.dir, e.file), options_.max_bytes + 1);
    Status valid = text ? check_event(*text, parsed) : Status(tl::unexpected(text.error()));
    if (!valid) {
      quarantine(e.file, valid.error().describe());
      events_.erase(events_.begin());
      ++r.quarantined;
      continue;
    }
    auto resp = post(*text, kStructured);
    if (!resp || !is_2xx(resp->status)) {
      r.last_error = !resp ? resp.error().describe() : "HTTP status " + std::to_string(resp->status);
      note_failure(r.last_error);
      break;
    }
    failures_ = 0;
    // Only now: a crash before this line sends the same event (same id) again.
    BALLAST_CHECK(remove_entry(0));
    ++r.sent;
  }
  r.pending = events_.size();
  return r;
}

}  // namespace ballast::agent::report
