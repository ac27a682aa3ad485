// Scheduled Events and the agent's own reboots (reboot.azure_scheduled_events): a decision made
// from IMDS's events, and a RebootPolicy layer over the strategy's policy that acts on it.
//
// Before each reboot the strategy would allow, the layer reads the events:
// - an event of type Freeze, Reboot, Redeploy, Preempt or Terminate that names this VM and is
//   Scheduled or Started holds our reboot (waiting-to-reboot, with the reason), asked again
//   every reboot.azure_recheck_interval until the event is gone;
// - but a platform Reboot or Redeploy that is only Scheduled, while an update is staged and the
//   strategy allows a reboot (a window open, the FleetLock lock taken), is approved instead
//   (POST StartRequests), so the platform's reboot boots the staged update: one reboot for both;
// - IMDS unreachable: the strategy decides alone, and the status says IMDS was not reached.
// The strategy is asked only when its answer matters, so a FleetLock lock is not taken while a
// platform event holds the reboot anyway.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/azure/imds.hpp"
#include "agent/reboot/policy.hpp"
#include "agent/update_flow.hpp"
#include "common/clock.hpp"

namespace ballast::agent::azure {

struct EventDecision {
  enum class Kind {
    clear,        // no event holds us: the strategy's answer stands
    wait,         // an event holds our reboot
    approve,      // ride the platform's reboot: approve `event_ids`, do not reboot ourselves
    unreachable,  // IMDS did not answer: the strategy's answer stands
  };
  Kind kind = Kind::clear;
  bool reboot_now = false;             // whether we start our own reboot now
  std::string reason;                  // for status and the CloudEvent; empty when clear
  std::vector<std::string> event_ids;  // approve: to approve; wait: the events that hold us
  std::optional<TimePoint> ask_again;  // wait, approve: when to read the events again
};

const char* to_string(EventDecision::Kind kind);

// The decision for one reboot question. `vm_name` is compute.name (empty: unknown, and every
// event counts as naming this VM); `ask_strategy` is called at most once, only when its answer
// decides; its error is returned.
Result<EventDecision> decide_reboot(const Result<ScheduledEvents>& events, const std::string& vm_name, bool update_staged,
                                    const std::function<Result<bool>()>& ask_strategy, TimePoint now,
                                    std::chrono::milliseconds recheck);

// Called when the decision changes to one other than `clear` (a wait, an approval, IMDS lost):
// the daemon reports it as a CloudEvent.
using DecisionListener = std::function<void(const EventDecision&)>;

// The RebootPolicy layer: the strategy's policy (`inner`) keeps the operator's override and
// FleetLock's lock; this only adds the platform's events.
class ScheduledEventsPolicy final : public reboot::RebootPolicy {
 public:
  ScheduledEventsPolicy(std::unique_ptr<reboot::RebootPolicy> inner, std::unique_ptr<Imds> imds, std::string vm_name,
                        const Clock& clock, std::chrono::milliseconds recheck, DecisionListener listener = {})
      : inner_(std::move(inner)), imds_(std::move(imds)), vm_name_(std::move(vm_name)), clock_(clock),
        recheck_(recheck), listener_(std::move(listener)) {}

  Result<bool> may_reboot_now() override;
  Status steady_state() override { return inner_->steady_state(); }
  const char* strategy() const override { return inner_->strategy(); }
  void allow_once() override { inner_->allow_once(); }
  void hold() override { inner_->hold(); }
  void end_of_update() override;
  std::optional<TimePoint> next_attempt() const override;
  // scheduledEvents and rebootHold of the status: the last decision.
  void describe(AgentStatus& status) const override;

 private:
  std::unique_ptr<reboot::RebootPolicy> inner_;
  std::unique_ptr<Imds> imds_;
  std::string vm_name_;  // compute.name; read from IMDS at the first question that reaches it
  const Clock& clock_;
  std::chrono::milliseconds recheck_;
  DecisionListener listener_;
  mutable std::mutex mutex_;
  std::optional<EventDecision> last_;
  std::optional<TimePoint> ask_again_;
};

// `inner` under a ScheduledEventsPolicy when reboot.azure_scheduled_events is on (IMDS at
// azure.imds_endpoint, reboot.azure_recheck_interval), else `inner` itself. `vm_name`: compute.name
// when the instance document was read already, else empty (the policy asks IMDS).
std::unique_ptr<reboot::RebootPolicy> with_scheduled_events(const Config& config, std::unique_ptr<reboot::RebootPolicy> inner,
                                                            const Clock& clock, std::string vm_name,
                                                            DecisionListener listener);

// The CloudEvent data of a decision: {"decision","reason","eventIds"}.
nlohmann::json decision_event(const EventDecision& d);

}  // namespace ballast::agent::azure
