// Scheduled Events and our reboots: the decision as a table (event × status × whose × staged ×
// strategy), and the RebootPolicy layer over real strategies on a fake clock.
#include "agent/azure/scheduled_events.hpp"

#include <catch2/catch.hpp>

#include "tests/unit/agent/reboot/time_support.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace ballast::agent::azure;
using namespace std::chrono_literals;
using K = EventDecision::Kind;

namespace {

ScheduledEvent event(std::string type, std::string status, std::vector<std::string> resources = {"vm-a"},
                     std::string id = "E1") {
  ScheduledEvent e;
  e.id = std::move(id);
  e.type = std::move(type);
  e.status = std::move(status);
  e.resources = std::move(resources);
  e.resource_type = "VirtualMachine";
  e.source = "Platform";
  return e;
}

Result<ScheduledEvents> document(std::vector<ScheduledEvent> events) { return ScheduledEvents{1, std::move(events)}; }
Result<ScheduledEvents> unreachable() { return fail("http.transfer", "connection timed out"); }

}  // namespace

TEST_CASE("the Scheduled Events decision for each kind of event, status, flow state and strategy answer") {
  struct Row {
    const char* what;
    Result<ScheduledEvents> events;
    bool staged;
    bool strategy;  // what the strategy answers if asked
    K kind;
    bool reboot_now;
    bool strategy_asked;
  };
  const Row rows[] = {
      {"no events: the strategy says yes", document({}), true, true, K::clear, true, true},
      {"no events: the strategy says no", document({}), true, false, K::clear, false, true},
      {"IMDS unreachable: the strategy alone, yes", unreachable(), true, true, K::unreachable, true, true},
      {"IMDS unreachable: the strategy alone, no", unreachable(), true, false, K::unreachable, false, true},
      {"Freeze scheduled", document({event("Freeze", "Scheduled")}), true, true, K::wait, false, false},
      {"Freeze started", document({event("Freeze", "Started")}), true, true, K::wait, false, false},
      {"Preempt scheduled", document({event("Preempt", "Scheduled")}), true, true, K::wait, false, false},
      {"Terminate scheduled", document({event("Terminate", "Scheduled")}), true, true, K::wait, false, false},
      {"Reboot started", document({event("Reboot", "Started")}), true, true, K::wait, false, false},
      {"Redeploy started", document({event("Redeploy", "Started")}), true, true, K::wait, false, false},
      {"Reboot scheduled, staged, strategy yes: ride it", document({event("Reboot", "Scheduled")}), true, true, K::approve,
       false, true},
      {"Redeploy scheduled, staged, strategy yes: ride it", document({event("Redeploy", "Scheduled")}), true, true,
       K::approve, false, true},
      {"Reboot scheduled, staged, strategy no: wait", document({event("Reboot", "Scheduled")}), true, false, K::wait,
       false, true},
      {"Reboot scheduled, nothing staged: wait", document({event("Reboot", "Scheduled")}), false, true, K::wait, false,
       false},
      {"Reboot scheduled and Freeze scheduled: the freeze holds", document({event("Reboot", "Scheduled"),
                                                                            event("Freeze", "Scheduled", {"vm-a"}, "E2")}),
       true, true, K::wait, false, false},
      {"an event for another VM", document({event("Freeze", "Scheduled", {"vm-b"})}), true, true, K::clear, true, true},
      {"an event type that stops nothing", document({event("LiveMigration", "Scheduled")}), true, true, K::clear, true, true},
      {"an event that is over", document({event("Freeze", "Completed")}), true, true, K::clear, true, true},
  };
  const auto now = ballast::testing::utc(2026, 3, 1, 12, 0);
  for (const auto& r : rows) {
    INFO(r.what);
    int asked = 0;
    auto d = decide_reboot(r.events, "vm-a", r.staged, [&]() -> Result<bool> { ++asked; return r.strategy; }, now, 30s);
    REQUIRE(d);
    CHECK(d->kind == r.kind);
    CHECK(d->reboot_now == r.reboot_now);
    CHECK(asked == (r.strategy_asked ? 1 : 0));
    if (r.kind == K::wait || r.kind == K::approve) {
      CHECK(d->ask_again == now + 30s);
      CHECK_FALSE(d->event_ids.empty());
      CHECK_FALSE(d->reason.empty());
    } else {
      CHECK_FALSE(d->ask_again);
    }
    if (r.kind == K::unreachable) CHECK_THAT(d->reason, Catch::Contains("IMDS not reached"));
  }
}

TEST_CASE("a ride approves only the platform reboots that name this VM") {
  auto d = decide_reboot(document({event("Reboot", "Scheduled", {"vm-a"}, "mine"), event("Reboot", "Scheduled", {"vm-b"}, "theirs")}),
                         "vm-a", true, [] { return Result<bool>(true); }, ballast::testing::utc(2026, 3, 1), 1min);
  REQUIRE(d);
  CHECK(d->kind == K::approve);
  CHECK(d->event_ids == std::vector<std::string>{"mine"});
}

TEST_CASE("with the VM's name unknown every event counts as this VM's") {
  auto d = decide_reboot(document({event("Freeze", "Scheduled", {"vm-b"})}), "", true, [] { return Result<bool>(true); },
                         ballast::testing::utc(2026, 3, 1), 1min);
  REQUIRE(d);
  CHECK(d->kind == K::wait);
}

TEST_CASE("the strategy's error is the decision's error") {
  auto d = decide_reboot(document({}), "vm-a", true, [] { return Result<bool>(fail("x.y", "broken")); },
                         ballast::testing::utc(2026, 3, 1), 1min);
  REQUIRE_FALSE(d);
  CHECK(d.error().code == "x.y");
}

namespace {

// The layer over a periodic strategy (Saturday 03:00-05:00 UTC) on a fake clock.
struct Layered {
  FakeClock clock{ballast::testing::utc(2026, 3, 7, 1, 0)};  // a Saturday, before the window
  FakeImds* imds = nullptr;
  std::vector<EventDecision> reported;
  std::unique_ptr<ScheduledEventsPolicy> policy;

  Layered() {
    auto window = reboot::MaintenanceWindow::parse({"Sat"}, "03:00", 2h, reboot::TimeZone::utc());
    REQUIRE(window);
    auto inner = std::make_unique<reboot::StrategyPolicy>(std::make_unique<reboot::PeriodicGate>(std::move(*window), clock));
    auto fake = std::make_unique<FakeImds>();
    imds = fake.get();
    imds->identity.name = "vm-a";
    imds->identity.vm_id = "id-a";
    policy = std::make_unique<ScheduledEventsPolicy>(std::move(inner), std::move(fake), "", clock, 1min,
                                                     [this](const EventDecision& d) { reported.push_back(d); });
  }
  AgentStatus status() const {
    AgentStatus s;
    policy->describe(s);
    return s;
  }
};

}  // namespace

TEST_CASE("a scheduled platform reboot is ridden only inside the maintenance window") {
  Layered l;
  l.imds->events = {4, {event("Reboot", "Scheduled")}};
  CHECK_FALSE(*l.policy->may_reboot_now());
  CHECK(l.imds->approved.empty());  // the window is closed: not approved
  CHECK(l.status().scheduled_events == "waiting");
  CHECK(l.policy->next_attempt() == l.clock.now() + 1min);  // sooner than the window's opening

  l.clock.advance(2h + 30min);  // 03:30, the window is open
  CHECK_FALSE(*l.policy->may_reboot_now());  // the platform reboots, not us
  REQUIRE(l.imds->approved.size() == 1);
  CHECK(l.imds->approved[0] == std::vector<std::string>{"E1"});
  CHECK(l.status().scheduled_events == "approved");
  REQUIRE(l.reported.size() == 2);
  CHECK(l.reported[1].kind == K::approve);
  CHECK(decision_event(l.reported[1])["decision"] == "approved");
}

TEST_CASE("a freeze holds a reboot the window allows, and the reboot goes once the freeze is gone") {
  Layered l;
  l.clock.advance(2h + 30min);  // in the window
  l.imds->events = {2, {event("Freeze", "Scheduled")}};
  CHECK_FALSE(*l.policy->may_reboot_now());
  CHECK_THAT(l.status().reboot_hold, Catch::Contains("Freeze event E1"));
  CHECK(l.policy->next_attempt() == l.clock.now() + 1min);
  CHECK_FALSE(*l.policy->may_reboot_now());  // asked again: the same wait, reported once
  CHECK(l.reported.size() == 1);

  l.imds->events = {3, {}};
  l.clock.advance(1min);
  CHECK(*l.policy->may_reboot_now());
  CHECK(l.status().scheduled_events == "clear");
  CHECK(l.status().reboot_hold.empty());
}

TEST_CASE("with IMDS unreachable the window alone decides and the status says IMDS was not reached") {
  Layered l;
  l.imds->reachable = false;
  CHECK_FALSE(*l.policy->may_reboot_now());  // 01:00: the window is closed
  CHECK_THAT(l.status().reboot_hold, Catch::Contains("IMDS not reached"));
  CHECK(l.policy->next_attempt() == ballast::testing::utc(2026, 3, 7, 3, 0));  // the window's opening, no polling
  l.clock.advance(2h + 30min);
  CHECK(*l.policy->may_reboot_now());
  CHECK(l.status().scheduled_events == "imds-unreachable");
}

TEST_CASE("the operator's hold is kept under the Scheduled Events layer: a platform reboot is not approved") {
  Layered l;
  l.clock.advance(2h + 30min);
  l.imds->events = {4, {event("Reboot", "Scheduled")}};
  l.policy->hold();
  CHECK_FALSE(*l.policy->may_reboot_now());
  CHECK(l.imds->approved.empty());
  l.policy->end_of_update();
  CHECK(l.status().scheduled_events.empty());
}
