// Azure's Instance Metadata Service (IMDS), as the agent uses it: Scheduled Events (the
// platform's own maintenance, which the reboot policy coordinates with) and the instance's
// identity (node id and the heartbeat's fields). Shapes as Microsoft documents them:
//   GET  {endpoint}/metadata/scheduledevents?api-version=2020-07-01
//        {"DocumentIncarnation":N,"Events":[{"EventId","EventType","ResourceType","Resources":[..],
//          "EventStatus","NotBefore","Description","EventSource","DurationInSeconds"}]}
//   POST the same URL with {"StartRequests":[{"EventId":..}]}: approve, the event may start now
//   GET  {endpoint}/metadata/instance?api-version=2021-02-01: {"compute":{...},"network":{...}}
// Every request carries "Metadata: true", never goes through a proxy and gives up after a few
// seconds: an absent endpoint (not on Azure) must cost nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/result.hpp"

namespace ballast::agent::azure {

using TimePoint = std::chrono::system_clock::time_point;

inline constexpr const char* kDefaultImdsEndpoint = "http://169.254.169.254";

struct ScheduledEvent {
  std::string id;                  // EventId
  std::string type;                // EventType: Freeze, Reboot, Redeploy, Preempt, Terminate (others ignored)
  std::string resource_type;       // ResourceType: VirtualMachine
  std::vector<std::string> resources;  // Resources: the names of the VMs it affects
  std::string status;              // EventStatus: Scheduled, Started
  std::optional<TimePoint> not_before;  // NotBefore; absent (empty) once Started
  std::string description;         // Description
  std::string source;              // EventSource: Platform, User
  int64_t duration_seconds = -1;   // DurationInSeconds; -1: unknown
};

struct ScheduledEvents {
  int64_t incarnation = 0;  // DocumentIncarnation: changes whenever the events do
  std::vector<ScheduledEvent> events;
};

// compute.* of the instance document.
struct InstanceIdentity {
  std::string name;         // compute.name: what Scheduled Events' Resources call this VM
  std::string vm_id;        // compute.vmId
  std::string resource_id;  // compute.resourceId
  std::string location, zone, vm_size;
  bool secure_boot = false;  // compute.securityProfile.secureBootEnabled
  bool virtual_tpm = false;  // compute.securityProfile.virtualTpmEnabled
};

class Imds {
 public:
  virtual ~Imds() = default;
  virtual Result<ScheduledEvents> scheduled_events() = 0;
  virtual Status approve(const std::vector<std::string>& event_ids) = 0;
  virtual Result<InstanceIdentity> instance() = 0;
};

// "imds.bad-document" when a document is not the documented shape.
Result<ScheduledEvents> parse_scheduled_events(const std::string& json);
Result<InstanceIdentity> parse_instance(const std::string& json);
// The approval body: {"StartRequests":[{"EventId":"…"},…]}.
std::string start_requests_body(const std::vector<std::string>& event_ids);

// libcurl against `endpoint` ("http://169.254.169.254", or a test server's "http://127.0.0.1:PORT").
std::unique_ptr<Imds> make_imds(const std::string& endpoint);
// make_imds(azure.imds_endpoint).
std::unique_ptr<Imds> make_imds(const Config& config);

// With azure.instance_metadata: the instance document, read once (the caller keeps it for the
// daemon's run). Off, or IMDS unreachable (not on Azure): nullopt, and the machine id stays the node id.
std::optional<InstanceIdentity> read_instance_identity(const Config& config);

// For unit tests: answers what it holds; `reachable = false` fails every request as an absent
// endpoint does; records approvals.
class FakeImds final : public Imds {
 public:
  bool reachable = true;
  ScheduledEvents events;
  InstanceIdentity identity;
  std::vector<std::vector<std::string>> approved;
  int asked = 0;

  Result<ScheduledEvents> scheduled_events() override;
  Status approve(const std::vector<std::string>& event_ids) override;
  Result<InstanceIdentity> instance() override;
};

}  // namespace ballast::agent::azure
