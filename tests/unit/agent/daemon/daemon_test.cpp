#include <condition_variable>
#include <future>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "agent/daemon/daemon.hpp"
#include "agent/daemon/pin.hpp"
#include "agent/reboot/window.hpp"
#include "common/file.hpp"
#include "tests/unit/agent/flow_fakes.hpp"
#include "tests/unit/agent/reboot/time_support.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace ballast::agent::testing;
using S = FlowState;
using namespace std::chrono_literals;

namespace {
using namespace ballast::version_literals;

// Records what observers hear and on which thread; lets a test wait for a state.
struct RecordingObserver : AgentObserver {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> transitions;  // "from>to"
  std::vector<Progress> progress;
  std::vector<std::string> updates_started;  // "target from"
  std::vector<std::thread::id> threads;
  void on_transition(const std::string& from, const std::string& to) override {
    std::lock_guard lock(m);
    transitions.push_back(from + ">" + to);
    threads.push_back(std::this_thread::get_id());
    cv.notify_all();
  }
  void on_update_started(const std::string& target, const std::string& from) override {
    std::lock_guard lock(m);
    updates_started.push_back(target + " from " + from);
  }
  void on_progress(const Progress& p) override {
    std::lock_guard lock(m);
    progress.push_back(p);
    threads.push_back(std::this_thread::get_id());
    cv.notify_all();
  }
  void wait_for(const std::string& to) {
    std::unique_lock lock(m);
    cv.wait(lock, [&] {
      return std::any_of(transitions.begin(), transitions.end(),
                         [&](const std::string& t) { return t.size() > to.size() && t.ends_with(">" + to); });
    });
  }
};

// A source whose stage() blocks until released, so a test can look at the daemon mid-staging.
struct BlockingSource : FakeSource {
  using FakeSource::FakeSource;
  std::promise<void> entered;
  std::promise<void> release;
  std::function<void()> during;
  Status stage(const ReleasePlan& r) override {
    if (during) during();
    entered.set_value();
    release.get_future().wait();
    return FakeSource::stage(r);
  }
};

struct Rig {
  std::string state = *make_temp_dir("ballast-daemon-test");
  boot::FakeBootControl boot;
  reboot::FakeRebootPolicy gate;
  FakeRebooter rebooter;
  FakeHealth health;
  RecordingReporter reporter;
  FakeClock clock;
  DaemonOptions opts;
  Rig() {
    boot::KernelSpec k;
    k.version = "1.0"_v;
    k.kernel_path = "/vmlinuz-1.0";
    REQUIRE(boot.install(k));
    REQUIRE(boot.bless("1.0"_v));
    boot.set_booted("1.0"_v);
    opts.state_dir = state;
    opts.check_interval = std::chrono::hours(24);  // the timer never fires during a test
    opts.check_jitter = std::chrono::milliseconds(0);
  }
  ~Rig() { (void)remove_tree(state); }
  std::unique_ptr<Daemon> open(ReleaseSource& source) { return open(source, gate); }
  // 2.0 (offered by `source`) staged, booted and committed: the daemon on that boot, resting.
  std::unique_ptr<Daemon> committed(FakeSource& source) {
    source.offered = {"2.0"};
    REQUIRE(open(source)->run_flow());
    REQUIRE(boot.simulate_reboot());
    auto d = open(source);
    REQUIRE(d->run_flow());
    REQUIRE(d->state() == S::idle);
    return d;
  }
  std::unique_ptr<Daemon> open(ReleaseSource& source, reboot::RebootPolicy& policy) {
    auto d = Daemon::open(opts, DaemonPorts{boot, source, policy, rebooter, health, reporter, clock});
    REQUIRE(d);
    return std::move(*d);
  }
};

}  // namespace

TEST_CASE("the daemon runs an update to the reboot, and after the reboot verifies and commits it") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  RecordingObserver obs;
  {
    auto d = rig.open(source);
    d->add_observer(obs);
    auto passed = d->run_flow();
    REQUIRE(passed);
    CHECK(*passed == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::rebooting, S::verifying});
    CHECK(rig.rebooter.reboots == 1);
    CHECK(d->status()->state == "verifying");
  }
  CHECK(obs.transitions == std::vector<std::string>{"idle>checking", "checking>staging", "staging>staged",
                                                    "staged>waiting-to-reboot", "waiting-to-reboot>rebooting",
                                                    "rebooting>verifying"});
  REQUIRE(rig.boot.simulate_reboot());
  auto d = rig.open(source);
  CHECK(d->status()->booted == "2.0");
  CHECK(d->state() == S::verifying);
  REQUIRE(d->run_flow());
  CHECK(d->status()->state == "idle");
  CHECK(rig.reporter.types ==
        std::vector<std::string>{"checked", "staged", "rebooting", "booted", "health.passed", "committed"});
  auto h = d->history();
  REQUIRE(h);
  REQUIRE(h->size() == 1);
  CHECK((*h)[0]["result"] == "committed");
  CHECK((*h)[0]["target"] == "2.0");
}

TEST_CASE("the event loop stays responsive while staging runs on the worker, and observers hear it on the loop thread") {
  Rig rig;
  BlockingSource source(rig.boot);
  source.offered = {"2.0"};
  rig.gate.open = false;  // rests in waiting-to-reboot
  auto d = rig.open(source);
  RecordingObserver obs;
  d->add_observer(obs);
  source.during = [&] { d->report_progress(Progress{50, 500, 1000, 250, "fetching 2.0"}); };
  std::promise<std::thread::id> loop_thread;
  std::thread loop([&] {
    loop_thread.set_value(std::this_thread::get_id());
    auto st = d->run();
    CHECK(st);
  });
  auto loop_id = loop_thread.get_future().get();
  d->wait_running();
  REQUIRE(d->update(UpdateOptions{}));
  source.entered.get_future().wait();
  // The worker is inside stage(): the API still answers, and refuses a second update.
  auto s = d->status();
  REQUIRE(s);
  CHECK(s->state == "staging");
  CHECK(s->target == "2.0");
  CHECK(s->progress.bytes == 500);
  CHECK(s->progress.total_bytes == 1000);
  auto again = d->update(UpdateOptions{});
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "daemon.busy");
  CHECK(d->check().error().code == "daemon.busy");
  source.release.set_value();
  obs.wait_for("waiting-to-reboot");
  d->stop();
  loop.join();
  CHECK(d->status()->staged == "2.0");
  std::lock_guard lock(obs.m);
  CHECK(obs.transitions == std::vector<std::string>{"idle>checking", "checking>staging", "staging>staged",
                                                    "staged>waiting-to-reboot"});
  REQUIRE(obs.progress.size() == 1);
  CHECK(obs.progress[0].percent == 50);
  for (auto id : obs.threads) CHECK(id == loop_id);
  CHECK(rig.rebooter.reboots == 0);
}

TEST_CASE("at start-up the loop resumes an interrupted flow without waiting for the check timer") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  {
    auto d = rig.open(source);
    REQUIRE(d->run_flow());
  }
  REQUIRE(rig.boot.simulate_reboot());
  auto d = rig.open(source);
  RecordingObserver obs;
  d->add_observer(obs);
  std::thread loop([&] { CHECK(d->run()); });
  d->wait_running();
  obs.wait_for("idle");
  d->stop();
  loop.join();
  CHECK(obs.transitions == std::vector<std::string>{"verifying>committed", "committed>idle"});
  CHECK(rig.boot.entries()->front().state == boot::EntryState::good);
}

TEST_CASE("update --download-only stages without rebooting under the immediate strategy; update --apply then reboots") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  reboot::StrategyPolicy policy(std::make_unique<reboot::ImmediateGate>());
  auto d = rig.open(source, policy);
  REQUIRE(d->update(UpdateOptions{.download_only = true, .apply = false}));
  CHECK(d->state() == S::waiting_to_reboot);
  CHECK(rig.rebooter.reboots == 0);
  // Held for this update: the timer is off until the operator says more.
  CHECK(d->next_wakeup().reboot_waits);
  CHECK_FALSE(d->next_wakeup().delay);
  REQUIRE(d->update(UpdateOptions{.download_only = false, .apply = true}));
  CHECK(d->state() == S::verifying);
  CHECK(rig.rebooter.reboots == 1);
  CHECK(source.stages == 1);
  CHECK_FALSE(d->update(UpdateOptions{.download_only = true, .apply = true}));
}

TEST_CASE("update --apply under the manual strategy reboots once; the next update waits for the operator again") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  reboot::StrategyPolicy policy(std::make_unique<reboot::ManualGate>());
  {
    auto d = rig.open(source, policy);
    REQUIRE(d->update(UpdateOptions{.download_only = false, .apply = true}));
    CHECK(d->state() == S::verifying);
    CHECK(rig.rebooter.reboots == 1);
  }
  REQUIRE(rig.boot.simulate_reboot());
  source.offered = {"2.0", "3.0"};
  auto d = rig.open(source, policy);
  REQUIRE(d->run_flow());  // 2.0 committed, then 3.0 staged by the timer's flow
  REQUIRE(d->run_flow());
  CHECK(d->state() == S::waiting_to_reboot);
  CHECK(rig.rebooter.reboots == 1);
}

TEST_CASE("update --apply under fleet_lock does not reboot while the server refuses the lock") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  repository::FakeHttpClient http;
  http.on_post = [](const repository::FakeHttpClient::Post&) -> Result<repository::HttpResponse> {
    return repository::HttpResponse{423, R"({"kind":"failed_lock","value":"held by node-b"})"};
  };
  auto client = reboot::FleetLockClient::create(http, reboot::FleetLockOptions{"http://locks", "node-a", "default"});
  REQUIRE(client);
  reboot::StrategyPolicy policy(std::make_unique<reboot::FleetLockGate>(std::move(*client), rig.clock));
  auto d = rig.open(source, policy);
  REQUIRE(d->update(UpdateOptions{.download_only = false, .apply = true}));
  CHECK(d->state() == S::waiting_to_reboot);
  CHECK(rig.rebooter.reboots == 0);
  REQUIRE(http.posts.size() == 1);
  CHECK(http.posts[0].url == "http://locks/v1/pre-reboot");
  // The timer is armed for the end of the backoff, where the lock is asked for again.
  CHECK(d->next_wakeup().delay == std::chrono::milliseconds(15s));
}

TEST_CASE("with strategy periodic the daemon arms its timer for the window's opening, not for a poll") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  rig.clock.set_wall(ballast::testing::utc(2026, 1, 2, 12));  // a Friday
  auto window = reboot::MaintenanceWindow::parse({"Sat-Sun"}, "03:00", 2h, reboot::TimeZone::utc());
  REQUIRE(window);
  reboot::StrategyPolicy policy(std::make_unique<reboot::PeriodicGate>(std::move(*window), rig.clock));
  auto d = rig.open(source, policy);
  CHECK_FALSE(d->next_wakeup().reboot_waits);  // idle: the check timer
  REQUIRE(d->run_flow());
  REQUIRE(d->state() == S::waiting_to_reboot);
  auto opens = ballast::testing::utc(2026, 1, 3, 3);
  REQUIRE(policy.next_attempt() == opens);
  CHECK(d->next_wakeup().reboot_waits);
  CHECK(d->next_wakeup().delay == std::chrono::duration_cast<std::chrono::milliseconds>(opens - rig.clock.now()));
  CHECK(d->next_wakeup().delay == std::chrono::milliseconds(15h));
  rig.clock.advance(14h);
  CHECK(d->next_wakeup().delay == std::chrono::milliseconds(1h));
  rig.clock.set_wall(opens);
  CHECK(d->next_wakeup().delay == std::chrono::milliseconds(0));
  REQUIRE(d->run_flow());
  CHECK(d->state() == S::verifying);
  CHECK(rig.rebooter.reboots == 1);
}

TEST_CASE("while a reboot waits for a strategy with no next attempt the daemon's timer is off") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  rig.gate.open = false;
  auto d = rig.open(source);
  REQUIRE(d->run_flow());
  REQUIRE(d->state() == S::waiting_to_reboot);
  CHECK(d->next_wakeup().reboot_waits);
  CHECK_FALSE(d->next_wakeup().delay);
  rig.gate.next = rig.clock.now() + 90s;
  CHECK(d->next_wakeup().delay == std::chrono::milliseconds(90s));
}

TEST_CASE("a check through the API reports what is available and why") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  auto d = rig.open(source);
  auto c = d->check();
  REQUIRE(c);
  CHECK((*c)["available"] == "2.0");
  CHECK(d->state() == S::idle);
  CHECK(d->status()->last_check == std::chrono::duration_cast<std::chrono::seconds>(rig.clock.now().time_since_epoch()).count());
  CHECK(rig.reporter.types == std::vector<std::string>{"checked"});
}

TEST_CASE("the status shows how many reports the outbox dropped") {
  Rig rig;
  FakeSource source(rig.boot);
  auto d = rig.open(source);
  CHECK(d->status()->dropped_events == 0);
  rig.reporter.dropped = 7;
  CHECK(d->status()->dropped_events == 7);
  CHECK(agent::to_json(*d->status())["droppedEvents"] == 7);
  CHECK(agent::agent_status_from_json(agent::to_json(*d->status()))->dropped_events == 7);
}

TEST_CASE("an operator rollback makes the previous version boot next and denylists the booted one") {
  Rig rig;
  FakeSource source(rig.boot);
  {
    auto d = rig.committed(source);
    REQUIRE(d->rollback(false));
    CHECK(rig.rebooter.reboots == 1);  // the update's only
    CHECK(rig.gate.allowed_once == 0);
  }
  CHECK(*rig.boot.simulate_reboot() == "1.0"_v);
  auto d = rig.open(source);
  auto passed = d->run_flow();
  REQUIRE(passed);
  CHECK(*passed == std::vector<S>{S::checking, S::idle});  // 2.0 is not offered again
}

TEST_CASE("rollback --reboot asks the reboot policy, which may make the reboot wait") {
  Rig rig;
  FakeSource source(rig.boot);
  auto d = rig.committed(source);
  REQUIRE(rig.rebooter.reboots == 1);
  rig.gate.open = false;
  rig.gate.next = rig.clock.now() + 30s;
  int asked = rig.gate.asked;
  REQUIRE(d->rollback(true));
  CHECK(rig.gate.allowed_once == 1);
  CHECK(rig.gate.asked == asked + 1);
  CHECK(rig.rebooter.reboots == 1);  // refused: no reboot yet
  CHECK(d->next_wakeup().reboot_waits);
  CHECK(d->next_wakeup().delay == std::chrono::milliseconds(30s));
  rig.gate.open = true;
  REQUIRE(d->rollback(true));
  CHECK(rig.rebooter.reboots == 2);
}

TEST_CASE("pin and unpin through the API write and remove the pin file that status shows") {
  Rig rig;
  FakeSource source(rig.boot);
  auto d = rig.open(source);
  REQUIRE(d->pin("3.1"));
  CHECK(*read_pin(rig.state) == std::optional<Version>("3.1"_v));
  CHECK(d->status()->pinned == "3.1");
  REQUIRE(d->unpin());
  CHECK(d->status()->pinned.empty());
  CHECK(d->pin("../x").error().code == "version.invalid");
  CHECK(d->pin("2.0+1").error().code == "version.invalid");  // the boot counter's character, refused as everywhere
}

TEST_CASE("the check timer's delay is the interval plus a random part of the jitter") {
  DaemonOptions o;
  o.check_interval = std::chrono::minutes(60);
  o.check_jitter = std::chrono::minutes(10);
  std::mt19937_64 rng(7);
  std::set<int64_t> seen;
  for (int i = 0; i < 100; ++i) {
    auto d = Daemon::next_check_delay(o, rng);
    REQUIRE(d >= o.check_interval);
    REQUIRE(d <= o.check_interval + o.check_jitter);
    seen.insert(d.count());
  }
  CHECK(seen.size() > 50);
  o.check_jitter = std::chrono::milliseconds(0);
  CHECK(Daemon::next_check_delay(o, rng) == o.check_interval);
}

TEST_CASE("from the moment staging starts, before the fetch reports anything, the progress total is the plan's download size") {
  Rig rig;
  BlockingSource source(rig.boot);
  source.offered = {"2.0"};  // planned with 1000 bytes to download
  rig.gate.open = false;
  auto d = rig.open(source);
  std::thread worker([&] { CHECK(d->run_flow()); });
  source.entered.get_future().wait();
  auto s = d->status();
  REQUIRE(s);
  CHECK(s->state == "staging");
  CHECK(s->progress.bytes == 0);
  CHECK(s->progress.total_bytes == 1000);
  source.release.set_value();
  worker.join();
}

TEST_CASE("observers hear which update started as the flow recorded it, even when the loop delivers it after the update failed") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  source.stage_error = Error{"http.transfer", "connection reset", 0, {}};
  auto d = rig.open(source);
  RecordingObserver obs;
  d->add_observer(obs);
  // The flow runs to its end (staging failed, idle again) before the loop delivers anything:
  // a status read at delivery no longer names the update.
  REQUIRE(d->run_flow());
  CHECK(d->status()->target.empty());
  std::thread loop([&] { CHECK(d->run()); });
  d->wait_running();
  obs.wait_for("idle");
  d->stop();
  loop.join();
  std::lock_guard lock(obs.m);
  CHECK(obs.updates_started == std::vector<std::string>{"2.0 from 1.0"});
}
