#include "agent/azure/scheduled_events.hpp"

#include <algorithm>
#include <ctime>

#include "common/log.hpp"

namespace ballast::agent::azure {

namespace {

bool one_of(const std::string& s, std::initializer_list<const char*> values) {
  return std::any_of(values.begin(), values.end(), [&](const char* v) { return s == v; });
}

// Events that stop or move this VM; others (e.g. a future type) do not hold a reboot.
bool holds_reboot(const ScheduledEvent& e, const std::string& vm_name) {
  if (!one_of(e.type, {"Freeze", "Reboot", "Redeploy", "Preempt", "Terminate"})) return false;
  if (!one_of(e.status, {"Scheduled", "Started"})) return false;
  return vm_name.empty() || std::find(e.resources.begin(), e.resources.end(), vm_name) != e.resources.end();
}

// A platform reboot we may ride: it has not started, and it reboots (Redeploy: on another host).
bool rideable(const ScheduledEvent& e) { return one_of(e.type, {"Reboot", "Redeploy"}) && e.status == "Scheduled"; }

std::string utc(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string describe(const ScheduledEvent& e) {
  std::string s = "Azure " + e.type + " event " + e.id + " (" + (e.source.empty() ? "" : e.source + ", ") + e.status;
  if (e.not_before) s += ", not before " + utc(*e.not_before);
  return s + ")";
}

}  // namespace

const char* to_string(EventDecision::Kind kind) {
  switch (kind) {
    case EventDecision::Kind::clear: return "clear";
    case EventDecision::Kind::wait: return "waiting";
    case EventDecision::Kind::approve: return "approved";
    case EventDecision::Kind::unreachable: return "imds-unreachable";
  }
  return "clear";
}

Result<EventDecision> decide_reboot(const Result<ScheduledEvents>& events, const std::string& vm_name, bool update_staged,
                                    const std::function<Result<bool>()>& ask_strategy, TimePoint now,
                                    std::chrono::milliseconds recheck) {
  using K = EventDecision::Kind;
  EventDecision d;
  if (!events) {
    d.kind = K::unreachable;
    d.reboot_now = BALLAST_TRY(ask_strategy());
    d.reason = "IMDS not reached (" + events.error().describe() + "): the reboot strategy decides alone";
    return d;
  }
  std::vector<const ScheduledEvent*> holding;
  for (const auto& e : events->events)
    if (holds_reboot(e, vm_name)) holding.push_back(&e);
  if (holding.empty()) {
    d.kind = K::clear;
    d.reboot_now = BALLAST_TRY(ask_strategy());
    return d;
  }
  d.ask_again = now + recheck;
  for (const auto* e : holding) d.event_ids.push_back(e->id);
  const auto blocker = std::find_if(holding.begin(), holding.end(), [](const ScheduledEvent* e) { return !rideable(*e); });
  if (blocker != holding.end()) {
    d.kind = K::wait;
    d.reason = describe(**blocker) + " holds the reboot";
    return d;
  }
  // Only platform reboots that have not started: one reboot can serve both, if we may reboot now.
  if (update_staged && BALLAST_TRY(ask_strategy())) {
    d.kind = K::approve;
    d.reason = describe(*holding.front()) + " approved: the platform's reboot boots the staged update";
    return d;
  }
  d.kind = K::wait;
  d.reason = describe(*holding.front()) + " holds the reboot" +
             (update_staged ? " (the reboot strategy does not allow a reboot yet)" : "");
  return d;
}

Result<bool> ScheduledEventsPolicy::may_reboot_now() {
  auto events = imds_->scheduled_events();
  if (events && vm_name_.empty()) {
    // Which events name this VM: compute.name, asked once IMDS answers.
    if (auto instance = imds_->instance()) vm_name_ = instance->name;
    else log::warning("IMDS instance document: " + instance.error().describe() + "; every event counts as this VM's");
  }
  auto d = BALLAST_TRY(decide_reboot(events, vm_name_, true, [this] { return inner_->may_reboot_now(); }, clock_.now(), recheck_));
  if (d.kind == EventDecision::Kind::approve) {
    if (auto approved = imds_->approve(d.event_ids); !approved) {
      // Not approved: the event still holds us; the next question tries again.
      d.kind = EventDecision::Kind::wait;
      d.reason += "; but the approval failed: " + approved.error().describe();
    }
  }
  bool changed;
  {
    std::lock_guard lock(mutex_);
    changed = !last_ || last_->kind != d.kind || last_->event_ids != d.event_ids;
    last_ = d;
    ask_again_ = d.ask_again;
  }
  if (changed && d.kind != EventDecision::Kind::clear) {
    log::info("scheduled events: " + d.reason);
    if (listener_) listener_(d);
  }
  return d.reboot_now;
}

void ScheduledEventsPolicy::end_of_update() {
  inner_->end_of_update();
  std::lock_guard lock(mutex_);
  ask_again_.reset();
  last_.reset();
}

std::optional<TimePoint> ScheduledEventsPolicy::next_attempt() const {
  {
    // Held by an event: its recheck, not the strategy's time (an open window would say "now",
    // and the daemon would ask again at once, over and over); the strategy is asked then.
    std::lock_guard lock(mutex_);
    if (ask_again_) return ask_again_;
  }
  return inner_->next_attempt();
}

void ScheduledEventsPolicy::describe(AgentStatus& status) const {
  std::lock_guard lock(mutex_);
  if (!last_) return;
  status.scheduled_events = to_string(last_->kind);
  status.reboot_hold = last_->reason;
}

std::unique_ptr<reboot::RebootPolicy> with_scheduled_events(const Config& config, std::unique_ptr<reboot::RebootPolicy> inner,
                                                            const Clock& clock, std::string vm_name,
                                                            DecisionListener listener) {
  if (!config.get_bool("reboot.azure_scheduled_events")) return inner;
  return std::make_unique<ScheduledEventsPolicy>(std::move(inner), make_imds(config), std::move(vm_name), clock,
                                                 config.get_duration("reboot.azure_recheck_interval"), std::move(listener));
}

nlohmann::json decision_event(const EventDecision& d) {
  return {{"decision", to_string(d.kind)}, {"reason", d.reason}, {"eventIds", d.event_ids}};
}

}  // namespace ballast::agent::azure
