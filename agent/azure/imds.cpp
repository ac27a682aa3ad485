#include "agent/azure/imds.hpp"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/json_member.hpp"
#include "common/log.hpp"
#include "repository/http.hpp"

namespace ballast::agent::azure {

namespace {

using nlohmann::json;

constexpr const char* kScheduledEventsPath = "/metadata/scheduledevents?api-version=2020-07-01";
constexpr const char* kInstancePath = "/metadata/instance?api-version=2021-02-01";
constexpr uint64_t kMaxDocument = 1 << 20;

tl::unexpected<Error> bad(const std::string& what) { return fail("imds.bad-document", what); }

// NotBefore is an RFC 1123 date ("Mon, 19 Sep 2016 18:29:47 GMT"), empty once an event started.
Result<std::optional<TimePoint>> parse_not_before(const std::string& text) {
  if (text.empty()) return std::optional<TimePoint>{};
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return bad("NotBefore is not an RFC 1123 date: \"" + text + "\"");
  const int64_t at = ::timegm(&tm);
  if (at < 0 || at >= kLatestUnixSeconds) return bad("NotBefore is out of range: \"" + text + "\"");
  return std::optional<TimePoint>(time_point_of_unix_seconds(at));
}

// securityProfile's flags are the strings "true"/"false" in the documented responses.
bool flag(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return it->is_string() && it->get<std::string>() == "true";
}

class CurlImds final : public Imds {
 public:
  explicit CurlImds(std::string endpoint) : endpoint_(std::move(endpoint)) {
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    repository::HttpSettings s;
    s.connect_timeout = std::chrono::seconds(2);
    s.total_timeout = std::chrono::seconds(5);
    s.retries = 0;  // the caller asks again later; a reboot decision must not wait on backoffs
    s.no_proxy = true;
    s.headers = {"Metadata: true"};
    http_ = repository::make_curl_http_client(s);
  }

  Result<ScheduledEvents> scheduled_events() override {
    auto r = BALLAST_TRY(with_context(http_->get(endpoint_ + kScheduledEventsPath, kMaxDocument), "asking IMDS for scheduled events"));
    return parse_scheduled_events(r.body);
  }

  Status approve(const std::vector<std::string>& event_ids) override {
    auto r = BALLAST_TRY(with_context(http_->post(endpoint_ + kScheduledEventsPath, start_requests_body(event_ids),
                                                  {"Content-Type: application/json"}, kMaxDocument),
                                      "approving scheduled events"));
    if (r.status < 200 || r.status > 299)
      return fail("imds.approve", "IMDS refused the start request: HTTP status " + std::to_string(r.status));
    return ok();
  }

  Result<InstanceIdentity> instance() override {
    auto r = BALLAST_TRY(with_context(http_->get(endpoint_ + kInstancePath, kMaxDocument), "asking IMDS for the instance"));
    return parse_instance(r.body);
  }

 private:
  std::string endpoint_;
  std::unique_ptr<repository::HttpClient> http_;
};

}  // namespace

Result<ScheduledEvents> parse_scheduled_events(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("the scheduled events document is not a JSON object");
  ScheduledEvents out;
  auto inc = j.find("DocumentIncarnation");
  if (inc == j.end() || !inc->is_number_integer()) return bad("DocumentIncarnation is missing or not an integer");
  out.incarnation = inc->get<int64_t>();
  auto events = j.find("Events");
  if (events == j.end() || !events->is_array()) return bad("Events is missing or not an array");
  for (const auto& e : *events) {
    if (!e.is_object()) return bad("an event is not an object");
    ScheduledEvent ev;
    ev.id = string_member(e, "EventId");
    ev.type = string_member(e, "EventType");
    ev.status = string_member(e, "EventStatus");
    if (ev.id.empty() || ev.type.empty() || ev.status.empty())
      return bad("an event lacks EventId, EventType or EventStatus");
    ev.resource_type = string_member(e, "ResourceType");
    auto res = e.find("Resources");
    if (res == e.end() || !res->is_array()) return bad("event " + ev.id + " has no Resources array");
    for (const auto& r : *res) {
      if (!r.is_string()) return bad("event " + ev.id + " names a resource that is not a string");
      ev.resources.push_back(r.get<std::string>());
    }
    ev.not_before = BALLAST_TRY(with_context(parse_not_before(string_member(e, "NotBefore")), "event " + ev.id));
    ev.description = string_member(e, "Description");
    ev.source = string_member(e, "EventSource");
    if (auto d = e.find("DurationInSeconds"); d != e.end() && d->is_number_integer()) ev.duration_seconds = d->get<int64_t>();
    out.events.push_back(std::move(ev));
  }
  return out;
}

Result<InstanceIdentity> parse_instance(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("the instance document is not a JSON object");
  auto compute = j.find("compute");
  if (compute == j.end() || !compute->is_object()) return bad("the instance document has no compute object");
  InstanceIdentity id;
  id.name = string_member(*compute, "name");
  id.vm_id = string_member(*compute, "vmId");
  if (id.vm_id.empty()) return bad("compute.vmId is missing");
  id.resource_id = string_member(*compute, "resourceId");
  id.location = string_member(*compute, "location");
  id.zone = string_member(*compute, "zone");
  id.vm_size = string_member(*compute, "vmSize");
  if (auto sp = compute->find("securityProfile"); sp != compute->end() && sp->is_object()) {
    id.secure_boot = flag(*sp, "secureBootEnabled");
    id.virtual_tpm = flag(*sp, "virtualTpmEnabled");
  }
  return id;
}

std::string start_requests_body(const std::vector<std::string>& event_ids) {
  json requests = json::array();
  for (const auto& id : event_ids) requests.push_back({{"EventId", id}});
  return json{{"StartRequests", requests}}.dump();
}

std::unique_ptr<Imds> make_imds(const std::string& endpoint) { return std::make_unique<CurlImds>(endpoint); }

std::unique_ptr<Imds> make_imds(const Config& config) { return make_imds(config.get_string("azure.imds_endpoint")); }

std::optional<InstanceIdentity> read_instance_identity(const Config& config) {
  if (!config.get_bool("azure.instance_metadata")) return std::nullopt;
  auto id = make_imds(config)->instance();
  if (!id) {
    log::info("azure.instance_metadata: IMDS not reached, the node id comes from the machine id: " + id.error().describe());
    return std::nullopt;
  }
  return *id;
}

Result<ScheduledEvents> FakeImds::scheduled_events() {
  ++asked;
  if (!reachable) return fail("http.transfer", "IMDS: connection timed out (fake)");
  return events;
}

Status FakeImds::approve(const std::vector<std::string>& event_ids) {
  if (!reachable) return fail("http.transfer", "IMDS: connection timed out (fake)");
  approved.push_back(event_ids);
  return ok();
}

Result<InstanceIdentity> FakeImds::instance() {
  if (!reachable) return fail("http.transfer", "IMDS: connection timed out (fake)");
  return identity;
}

}  // namespace ballast::agent::azure
