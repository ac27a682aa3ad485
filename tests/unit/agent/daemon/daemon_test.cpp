#include <condition_variable>
#include <future>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "agent/daemon/daemon.hpp"
#include "agent/daemon/pin.hpp"
#include "common/file.hpp"
#include "tests/unit/agent/flow_fakes.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace ballast::agent::testing;
using S = FlowState;

namespace {

// Records what observers hear and on which thread; lets a test wait for a state.
struct RecordingObserver : AgentObserver {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> transitions;  // "from>to"
  std::vector<Progress> progress;
  std::vector<std::thread::id> threads;
  void on_transition(const std::string& from, const std::string& to) override {
    std::lock_guard lock(m);
    transitions.push_back(from + ">" + to);
    threads.push_back(std::this_thread::get_id());
    cv.notify_all();
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
  Status stage(const Release& r) override {
    if (during) during();
    entered.set_value();
    release.get_future().wait();
    return FakeSource::stage(r);
  }
};

struct Rig {
  std::string state = *make_temp_dir("ballast-daemon-test");
  boot::FakeBootControl boot;
  FakeGate gate;
  FakeRebooter rebooter;
  FakeHealth health;
  RecordingReporter reporter;
  FakeClock clock;
  DaemonOptions opts;
  Rig() {
    boot::KernelSpec k;
    k.version = "1.0";
    k.kernel_path = "/vmlinuz-1.0";
    REQUIRE(boot.install(k));
    REQUIRE(boot.bless("1.0"));
    boot.set_booted("1.0");
    opts.state_dir = state;
    opts.check_interval = std::chrono::hours(24);  // the timer never fires during a test
    opts.check_jitter = std::chrono::milliseconds(0);
  }
  ~Rig() { (void)remove_tree(state); }
  std::unique_ptr<Daemon> open(ReleaseSource& source) {
    auto d = Daemon::open(opts, DaemonPorts{boot, source, gate, rebooter, health, reporter, clock});
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

TEST_CASE("update --download-only stages without rebooting; update --apply reboots whatever the strategy says") {
  Rig rig;
  FakeSource source(rig.boot);
  source.offered = {"2.0"};
  auto d = rig.open(source);
  REQUIRE(d->update(UpdateOptions{.download_only = true, .apply = false}));
  CHECK(d->state() == S::waiting_to_reboot);
  CHECK(rig.rebooter.reboots == 0);
  rig.gate.open = false;
  REQUIRE(d->update(UpdateOptions{.download_only = false, .apply = true}));
  CHECK(d->state() == S::verifying);
  CHECK(rig.rebooter.reboots == 1);
  CHECK(source.stages == 1);
  CHECK_FALSE(d->update(UpdateOptions{.download_only = true, .apply = true}));
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
  source.offered = {"2.0"};
  {
    auto d = rig.open(source);
    REQUIRE(d->run_flow());
  }
  REQUIRE(rig.boot.simulate_reboot());
  {
    auto d = rig.open(source);
    REQUIRE(d->run_flow());  // 2.0 committed
    REQUIRE(d->rollback(false));
    CHECK(rig.rebooter.reboots == 1);  // the update's only
  }
  CHECK(*rig.boot.simulate_reboot() == "1.0");
  auto d = rig.open(source);
  auto passed = d->run_flow();
  REQUIRE(passed);
  CHECK(*passed == std::vector<S>{S::checking, S::idle});  // 2.0 is not offered again
}

TEST_CASE("pin and unpin through the API write and remove the pin file that status shows") {
  Rig rig;
  FakeSource source(rig.boot);
  auto d = rig.open(source);
  REQUIRE(d->pin("3.1"));
  CHECK(*read_pin(rig.state) == std::optional<std::string>("3.1"));
  CHECK(d->status()->pinned == "3.1");
  REQUIRE(d->unpin());
  CHECK(d->status()->pinned.empty());
  CHECK(d->pin("../x").error().code == "pin.bad-version");
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
