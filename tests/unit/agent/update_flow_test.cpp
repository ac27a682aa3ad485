#include <catch2/catch.hpp>

#include "agent/update_flow.hpp"
#include "agent/report/journal_events.hpp"
#include "tests/unit/agent/flow_fakes.hpp"
#include "tests/unit/agent/report/journal_capture.hpp"
#include "common/file.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::agent;
using S = FlowState;
using namespace ballast::agent::testing;

namespace {
using namespace ballast::version_literals;

// A host running 1.0 with the flow's collaborators, and a state directory that outlives
// "processes" (each open() is a fresh start of the agent).
struct Rig {
  std::string state = *make_temp_dir("ballast-flow-test");
  boot::FakeBootControl boot;
  FakeSource source{boot};
  FakeGate gate;
  FakeRebooter rebooter;
  FakeHealth health;
  RecordingReporter reporter;
  FakeClock clock;
  Rig() {
    boot::KernelSpec k;
    k.version = "1.0"_v;
    k.kernel_path = "/vmlinuz-1.0";
    REQUIRE(boot.install(k));
    REQUIRE(boot.bless("1.0"_v));
    boot.set_booted("1.0"_v);
  }
  ~Rig() { (void)remove_tree(state); }
  UpdateFlow start(RollbackBy rollback_by = RollbackBy::agent) {
    auto f = UpdateFlow::open(state, FlowPorts{boot, source, gate, rebooter, health, reporter, clock}, rollback_by);
    REQUIRE(f);
    return std::move(*f);
  }
  void reboot_machine() { REQUIRE(boot.simulate_reboot()); }
  // A record as this agent writes it, with the check's plan.
  void write_state(const std::string& state_name) {
    REQUIRE(write_file_atomic(path_join(state, "flow.json"),
                              "{\"state\":\"" + state_name + "\",\"target\":\"2.0\",\"from\":\"1.0\",\"plan\":{\"version\":\"2.0\","
                              "\"backward\":false,\"deltaFrom\":\"1.0\",\"downloadBytes\":1000,\"reason\":\"offered\"}}\n"));
  }
  // A record as the agent wrote it before plans existed: no "plan", a "targetBytes".
  void write_state_without_plan(const std::string& state_name) {
    REQUIRE(write_file_atomic(path_join(state, "flow.json"),
                              "{\"state\":\"" + state_name + "\",\"target\":\"2.0\",\"targetBytes\":0,\"from\":\"1.0\"}\n"));
  }
};

std::vector<S> run(UpdateFlow& f) {
  auto passed = f.run_until_rest();
  REQUIRE(passed);
  return *passed;
}

}  // namespace

TEST_CASE("an update goes check, stage, reboot, verify, commit and blesses the new entry") {
  Rig rig;
  rig.source.offered = {"2.0"};
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::rebooting, S::verifying});
  CHECK(rig.rebooter.announced == std::vector<std::string>{"2.0"});
  CHECK(rig.rebooter.reboots == 1);

  rig.reboot_machine();
  auto after = rig.start();  // the agent starts again on the new boot
  CHECK(after.state() == S::verifying);
  CHECK(run(after) == std::vector<S>{S::committed, S::idle});
  CHECK(*rig.boot.booted_version() == "2.0"_v);
  auto entries = rig.boot.entries();
  REQUIRE(entries);
  CHECK(entries->front().version == "2.0"_v);
  CHECK(entries->front().state == boot::EntryState::good);
  CHECK(rig.gate.steady == 1);
  CHECK(rig.reporter.types ==
        std::vector<std::string>{"checked", "staged", "rebooting", "booted", "health.passed", "committed"});
  CHECK(after.record().history.back()["result"] == "committed");
}

TEST_CASE("an unhealthy update is marked bad, falls back, is recorded as rolled back and never retried") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.health.healthy = false;
  auto flow = rig.start();
  run(flow);
  rig.reboot_machine();
  auto on_target = rig.start();
  CHECK(run(on_target) == std::vector<S>{S::reverting, S::verifying});
  CHECK(rig.rebooter.reboots == 2);
  rig.reboot_machine();  // systemd-boot skips the bad entry
  CHECK(*rig.boot.booted_version() == "1.0"_v);

  auto back = rig.start();
  CHECK(back.state() == S::rolled_back);  // the target's entry is bad and 1.0 booted
  CHECK(run(back) == std::vector<S>{S::idle});
  CHECK(back.record().denylist == std::vector<Version>{"2.0"_v});
  CHECK(rig.reporter.types == std::vector<std::string>{"checked", "staged", "rebooting", "booted", "health.failed",
                                                       "booted", "rolled-back"});
  // The next check finds nothing to do: 2.0 is denylisted.
  int stages = rig.source.stages;
  CHECK(run(back) == std::vector<S>{S::checking, S::idle});
  CHECK(rig.source.stages == stages);
}

TEST_CASE("with a controller rolling back, an unhealthy update is marked bad and fails with health.failed, without a reboot") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.health.healthy = false;
  auto flow = rig.start(RollbackBy::controller);
  run(flow);
  rig.reboot_machine();
  auto on_target = rig.start(RollbackBy::controller);
  CHECK(run(on_target) == std::vector<S>{S::failed, S::idle});
  CHECK(rig.rebooter.reboots == 1);  // only the one into 2.0: the controller decides the way back
  CHECK(*rig.boot.booted_version() == "2.0"_v);
  CHECK_THAT(on_target.record().history.back()["error"].get<std::string>(), Catch::Contains("[health.failed]"));
  CHECK(on_target.record().history.back()["result"] == "failed");
  // Marked bad: if the node reboots before the controller acts, boot counting falls back anyway.
  rig.reboot_machine();
  CHECK(*rig.boot.booted_version() == "1.0"_v);
}

TEST_CASE("a target that never comes up is rolled back once boot counting gives up on it") {
  Rig rig;
  rig.source.offered = {"2.0"};
  auto flow = rig.start();
  run(flow);
  // The new kernel panics before the agent runs: every try is used up, then the loader falls back.
  std::string booted;
  for (int i = 0; i < 4 && booted != "1.0"; ++i) {
    auto b = rig.boot.simulate_reboot();
    REQUIRE(b);
    booted = b->str();
  }
  REQUIRE(booted == "1.0");
  auto back = rig.start();
  CHECK(run(back) == std::vector<S>{S::idle});  // resumed as rolled back, recorded
  CHECK(back.record().denylist == std::vector<Version>{"2.0"_v});
}

TEST_CASE("a start resumes every written state from what booted: verify the target, roll back, wait, or give up") {
  const BootFacts on_trial{true, TargetEntry::pending};       // the target booted, on trial
  const BootFacts fell_back{false, TargetEntry::bad};        // the old version, the target bad or out of tries
  const BootFacts not_yet{false, TargetEntry::pending};      // the old version, the target still to boot
  const BootFacts nothing{false, TargetEntry::absent};       // no entry for the target
  struct Row {
    S written, on_trial, fell_back, not_yet, nothing;
  };
  const Row table[] = {
      {S::idle, S::idle, S::idle, S::idle, S::idle},
      {S::checking, S::checking, S::checking, S::checking, S::checking},
      {S::staging, S::verifying, S::rolled_back, S::staged, S::staging},
      {S::staged, S::verifying, S::rolled_back, S::staged, S::failed},
      {S::waiting_to_reboot, S::verifying, S::rolled_back, S::waiting_to_reboot, S::failed},
      {S::rebooting, S::verifying, S::rolled_back, S::waiting_to_reboot, S::failed},
      {S::verifying, S::verifying, S::rolled_back, S::waiting_to_reboot, S::failed},
      {S::reverting, S::reverting, S::rolled_back, S::rolled_back, S::rolled_back},
      {S::committed, S::committed, S::committed, S::committed, S::committed},
      {S::rolled_back, S::rolled_back, S::rolled_back, S::rolled_back, S::rolled_back},
      {S::failed, S::failed, S::failed, S::failed, S::failed},
  };
  REQUIRE(std::size(table) == 11);  // every FlowState
  for (const auto& row : table) {
    INFO("written " << to_string(row.written));
    CHECK(resume_state(row.written, on_trial) == row.on_trial);
    CHECK(resume_state(row.written, fell_back) == row.fell_back);
    CHECK(resume_state(row.written, not_yet) == row.not_yet);
    CHECK(resume_state(row.written, nothing) == row.nothing);
  }
}

TEST_CASE("a reboot by someone else while the update waits for the strategy is verified and committed on the next start") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.gate.open = false;  // manual, a closed window, a refused lock
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::waiting_to_reboot});
  rig.reboot_machine();  // the operator, or kured reacting to /run/reboot-required
  REQUIRE(*rig.boot.booted_version() == "2.0"_v);
  auto after = rig.start();
  CHECK(after.state() == S::verifying);
  CHECK(run(after) == std::vector<S>{S::committed, S::idle});
  CHECK(rig.boot.entries()->front().state == boot::EntryState::good);
  CHECK(rig.rebooter.reboots == 0);
  CHECK(after.record().history.back()["result"] == "committed");
}

TEST_CASE("every state the flow enters, by a step or by resuming at a start, is in the journal as it is saved") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.gate.open = false;
  ballast::testing::JournalCapture journal;
  REQUIRE(journal.bound());
  auto states = [&] {
    std::vector<std::string> seen;
    for (const auto& rec : journal.take()) {
      if (ballast::testing::field(rec, "MESSAGE_ID") != report::kMessageStateChanged) continue;
      // At rest the flow names no target.
      bool resting = ballast::testing::field(rec, "BALLAST_STATE") == "idle";
      CHECK(ballast::testing::field(rec, "BALLAST_VERSION") == (resting ? "<absent>" : "2.0"));
      CHECK(ballast::testing::field(rec, "PRIORITY") == "6");
      seen.push_back(ballast::testing::field(rec, "BALLAST_PREVIOUS_STATE") + ">" + ballast::testing::field(rec, "BALLAST_STATE"));
    }
    return seen;
  };
  auto flow = rig.start();
  run(flow);
  // idle>checking is the rest between checks, at debug.
  CHECK(states() == std::vector<std::string>{"checking>staging", "staging>staged", "staged>waiting-to-reboot"});
  rig.reboot_machine();
  // The start itself moves the written state on: no step runs before the record is there.
  auto after = rig.start();
  CHECK(states() == std::vector<std::string>{"waiting-to-reboot>verifying"});
  run(after);
  CHECK(states() == std::vector<std::string>{"verifying>committed", "committed>idle"});
}

TEST_CASE("a written state whose target the loader gave up on resumes as rolled back, with a booted event") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.gate.open = false;
  auto flow = rig.start();
  run(flow);
  std::string booted;  // the target never comes up: its tries run out and the loader falls back
  for (int i = 0; i < 4 && booted != "1.0"; ++i) booted = rig.boot.simulate_reboot()->str();
  REQUIRE(booted == "1.0");
  auto back = rig.start();
  CHECK(back.state() == S::rolled_back);
  CHECK(run(back) == std::vector<S>{S::idle});
  CHECK(back.record().denylist == std::vector<Version>{"2.0"_v});
  CHECK(rig.reporter.types == std::vector<std::string>{"checked", "staged", "booted", "rolled-back"});
  CHECK_THAT(back.record().history.back()["error"].get<std::string>(), Catch::Contains("fell back"));
}

TEST_CASE("a written state whose target entry is gone is recorded as failed and the flow goes idle") {
  Rig rig;
  rig.write_state("waiting-to-reboot");  // 2.0 was never installed on this fake loader
  auto flow = rig.start();
  CHECK(flow.state() == S::failed);
  CHECK_THAT(flow.record().last_error, Catch::Contains("boot entry of 2.0 is gone"));
  CHECK(run(flow) == std::vector<S>{S::idle});
  CHECK(flow.record().history.back()["result"] == "failed");
}

TEST_CASE("a crash while staging resumes the stage, and it completes") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.write_state("staging");
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::staged, S::waiting_to_reboot, S::rebooting, S::verifying});
  CHECK(rig.source.stages == 1);
}

TEST_CASE("a state that keeps killing the agent is given up after a few restarts") {
  Rig rig;
  rig.write_state("staging");
  for (int i = 0; i < UpdateFlow::kMaxResumes; ++i) CHECK(rig.start().state() == S::staging);
  auto flow = rig.start();
  CHECK(flow.state() == S::failed);
  CHECK_THAT(flow.record().last_error, Catch::Contains("gave up"));
  CHECK(run(flow) == std::vector<S>{S::idle});
}

TEST_CASE("a closed reboot window keeps the update staged until it opens") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.gate.open = false;
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::waiting_to_reboot});
  CHECK(rig.rebooter.reboots == 0);
  rig.gate.open = true;
  CHECK(run(flow) == std::vector<S>{S::rebooting, S::verifying});
  CHECK(rig.rebooter.reboots == 1);
}

TEST_CASE("a failed stage is reported with its error, recorded, and the flow returns to idle") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.source.stage_error = Error{"stage.no-space", "not enough space", 0, {}};
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::failed, S::idle});
  CHECK(rig.reporter.types == std::vector<std::string>{"checked", "error"});
  CHECK(flow.record().history.back()["result"] == "failed");
  CHECK_THAT(flow.record().history.back()["error"].get<std::string>(), Catch::Contains("stage.no-space"));
  CHECK(rig.rebooter.reboots == 0);
}

TEST_CASE("a release that fails staging for a reason that cannot change is denylisted, reported once and not staged again") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.source.stage_error = Error{"image.wrong-version", "the image holds IMAGE_VERSION \"1.0\", not release 2.0", 0, {}};
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::failed, S::idle});
  CHECK(flow.record().denylist == std::vector<Version>{"2.0"_v});
  CHECK_THAT(flow.record().history.back()["error"].get<std::string>(), Catch::Contains("2.0 is denylisted"));
  CHECK(run(flow) == std::vector<S>{S::checking, S::idle});
  CHECK(rig.source.stages == 1);
  CHECK(rig.reporter.types == std::vector<std::string>{"checked", "error", "checked"});
  // A newer release is still taken.
  rig.source.offered = {"2.0", "3.0"};
  rig.source.stage_error.reset();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::rebooting, S::verifying});
}

TEST_CASE("a transient staging failure leaves the release to be tried again at the next check") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.source.stage_error = Error{"http.transfer", "connection reset", 0, {}};
  auto flow = rig.start();
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::failed, S::idle});
  CHECK(flow.record().denylist.empty());
  CHECK(run(flow) == std::vector<S>{S::checking, S::staging, S::failed, S::idle});
  CHECK(rig.source.stages == 2);
}

TEST_CASE("the failures that cannot change are the image's and the manifest's, not the network's or the disk's") {
  for (const char* code : {"stage.bad-image", "image.wrong-version", "image.bad-version", "manifest.invalid"})
    CHECK(is_permanent_failure(Error{code, "", 0, {}}));
  for (const char* code : {"http.transfer", "http.status", "stage.no-space", "chunk.bad-data", "tuf.expired"})
    CHECK_FALSE(is_permanent_failure(Error{code, "", 0, {}}));
}

TEST_CASE("a committed update puts the release's boot loader on the ESP; only a commit does") {
  Rig rig;
  rig.source.offered = {"2.0"};
  auto flow = rig.start();
  run(flow);
  CHECK(rig.source.loader_updates.empty());  // staged and rebooting: the old loader stays
  rig.reboot_machine();
  auto after = rig.start();
  CHECK(run(after) == std::vector<S>{S::committed, S::idle});
  CHECK(rig.source.loader_updates == std::vector<std::string>{"2.0"});
  REQUIRE(rig.reporter.types.back() == "committed");
  CHECK(rig.reporter.data.back()["loader"] == "updated");
}

TEST_CASE("a boot loader that cannot be updated is reported with the commit and rolls nothing back") {
  Rig rig;
  rig.source.offered = {"2.0"};
  rig.source.loader_error = Error{"boot.loader-unsigned", "unsigned under Secure Boot", 0, {}};
  auto flow = rig.start();
  run(flow);
  rig.reboot_machine();
  auto after = rig.start();
  CHECK(run(after) == std::vector<S>{S::committed, S::idle});
  CHECK(after.record().history.back()["result"] == "committed");
  CHECK(after.record().denylist.empty());
  REQUIRE(rig.reporter.types.back() == "committed");
  CHECK(rig.reporter.data.back()["loader"] == "failed");
  CHECK_THAT(rig.reporter.data.back()["loaderError"].get<std::string>(), Catch::Contains("boot.loader-unsigned"));
  auto entries = rig.boot.entries();
  REQUIRE(entries);
  CHECK(entries->front().version == "2.0"_v);
  CHECK(entries->front().state == boot::EntryState::good);
}

TEST_CASE("the check's plan is saved in the flow record and a restart stages exactly that plan") {
  Rig rig;
  rig.source.offered = {"2.0"};
  {
    auto flow = rig.start();
    REQUIRE(flow.step());  // idle → checking
    REQUIRE(flow.step());  // checking → staging: the plan is made and saved
    REQUIRE(flow.state() == S::staging);
  }
  rig.source.offered = {"3.0"};  // the repository moved on: the restarted stage must not re-decide
  auto flow = rig.start();
  CHECK(flow.state() == S::staging);
  REQUIRE(flow.record().plan);
  CHECK(*flow.record().plan == ReleasePlan{"2.0"_v, false, std::nullopt, 1000, "offered"});
  REQUIRE(flow.step());
  CHECK(rig.source.staged == std::vector<ReleasePlan>{ReleasePlan{"2.0"_v, false, std::nullopt, 1000, "offered"}});
}

TEST_CASE("a plan read back from flow.json is the plan that was written, delta parent and all") {
  ReleasePlan plan{"2.0"_v, false, "1.0"_v, 4096, "newest allowed on channel stable: 2.0"};
  auto back = plan_from_json(plan_to_json(plan));
  REQUIRE(back);
  CHECK(*back == plan);
  ReleasePlan going_back{"1.0"_v, true, std::nullopt, 0, "pinned to 1.0"};
  CHECK(*plan_from_json(plan_to_json(going_back)) == going_back);
  ReleasePlan chain{"4.0"_v, false, "1.0"_v, 300, "r", {{"1.0"_v, "2.0"_v, 100}, {"2.0"_v, "3.0"_v, 100}, {"3.0"_v, "4.0"_v, 100}}};
  CHECK(*plan_from_json(plan_to_json(chain)) == chain);
  // A record written before chains existed has no "chain": one artifact.
  auto old = plan_from_json(nlohmann::json{{"version", "2.0"}, {"backward", false}, {"deltaFrom", "1.0"}, {"downloadBytes", 7u}, {"reason", "r"}});
  REQUIRE(old);
  CHECK(old->chain.empty());
  CHECK(old->delta_from == "1.0"_v);
  // A chain that does not start at deltaFrom or end at the version is corrupt.
  auto broken = plan_to_json(chain);
  broken["chain"].erase(0);
  CHECK(plan_from_json(broken).error().code == "flow.corrupt");
  auto bad = plan_from_json(nlohmann::json{{"version", "2.0"}, {"backward", "no"}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == "flow.corrupt");
}

TEST_CASE("a chain that starts from an earlier release's full stream reads back as written, and only its first link may be one") {
  ReleasePlan from_full{"3.0"_v, false, std::nullopt, 5200, "r", {{std::nullopt, "1.0"_v, 5000}, {"1.0"_v, "2.0"_v, 100}, {"2.0"_v, "3.0"_v, 100}}};
  auto written = plan_to_json(from_full);
  CHECK(written["chain"][0]["from"].is_null());
  CHECK(written["deltaFrom"].is_null());
  auto back = plan_from_json(written);
  REQUIRE(back);
  CHECK(*back == from_full);
  CHECK(describe_plan(from_full) == "full stream of 1.0 and 2 deltas 1.0 -> 2.0 -> 3.0, 5200 bytes");
  auto full_inside = written;
  full_inside["chain"][1]["from"] = nullptr;
  CHECK(plan_from_json(full_inside).error().code == "flow.corrupt");
  // A full stream first, but deltaFrom names a slot: the record contradicts itself.
  auto contradicting = written;
  contradicting["deltaFrom"] = "1.0";
  CHECK(plan_from_json(contradicting).error().code == "flow.corrupt");
}

TEST_CASE("a flow record written before plans existed still loads: a stopped check or stage resumes in checking") {
  for (const char* written : {"checking", "staging"}) {
    DYNAMIC_SECTION("written " << written) {
      Rig rig;
      rig.source.offered = {"2.0"};
      rig.write_state_without_plan(written);
      auto flow = rig.start();
      CHECK(flow.state() == S::checking);
      CHECK_FALSE(flow.record().plan);
      CHECK(run(flow) == std::vector<S>{S::staging, S::staged, S::waiting_to_reboot, S::rebooting, S::verifying});
      CHECK(rig.source.stages == 1);
    }
  }
  SECTION("past staging the target is all it needs: it resumes from what booted") {
    Rig rig;
    boot::KernelSpec k;
    k.version = "2.0"_v;
    k.kernel_path = "/vmlinuz-2.0";
    REQUIRE(rig.boot.install(k));  // counted with the default tries: on trial
    rig.reboot_machine();  // 2.0 booted on trial
    rig.write_state_without_plan("rebooting");
    auto flow = rig.start();
    CHECK(flow.state() == S::verifying);
    CHECK(flow.record().target == "2.0"_v);
  }
}

namespace {
// A start on the record `text` is refused as corrupt, naming `field`, and leaves the record as it was.
void check_refused_as_corrupt(const std::string& text, const std::string& field) {
  INFO(text);
  Rig rig;
  REQUIRE(write_file_atomic(path_join(rig.state, "flow.json"), text));
  auto flow = UpdateFlow::open(rig.state,
                               FlowPorts{rig.boot, rig.source, rig.gate, rig.rebooter, rig.health, rig.reporter, rig.clock});
  REQUIRE_FALSE(flow);
  CHECK(flow.error().code == "flow.corrupt");
  CHECK_THAT(flow.error().describe(), Catch::Contains(field));
  CHECK(*read_file(path_join(rig.state, "flow.json"), 1 << 20) == text);  // left as it was, for the operator
}
}  // namespace

TEST_CASE("a flow record naming an invalid version as target, from, denylisted or planned version is refused as corrupt") {
  const std::string valid = R"({"state":"staged","target":"2.0","from":"1.0","denylist":["1.5"],"plan":{"version":"2.0",)"
                            R"("backward":false,"deltaFrom":"1.0","downloadBytes":1000,"reason":"offered"}})";
  struct Case {
    std::string field, from, to;
  };
  auto c = GENERATE(Case{"target", R"("target":"2.0")", R"("target":"2.0+1")"},
                    Case{"target", R"("target":"2.0")", R"("target":7)"},
                    Case{"from", R"("from":"1.0")", R"("from":"../1.0")"},
                    Case{"denylist", R"(["1.5"])", R"(["1.5",".bad"])"},
                    Case{"denylist", R"(["1.5"])", R"("1.5")"},
                    Case{"plan's version", R"("version":"2.0")", R"("version":"-2.0")"},
                    Case{"plan's deltaFrom", R"("deltaFrom":"1.0")", R"("deltaFrom":"1 0")"});
  std::string text = valid;
  text.replace(text.find(c.from), c.from.size(), c.to);
  check_refused_as_corrupt(text, c.field);
}

TEST_CASE("a flow record whose error, restart count, history or plan has the wrong type is refused as corrupt") {
  const std::string valid = R"({"state":"staging","target":"2.0","from":"1.0","lastError":"","resumes":1,"denylist":[],)"
                            R"("history":[],"plan":{"version":"2.0","backward":false,"deltaFrom":null,"downloadBytes":1,"reason":""}})";
  struct Case {
    std::string field, from, to;
  };
  auto c = GENERATE(Case{"lastError", R"("lastError":"")", R"("lastError":5)"},
                    Case{"resumes", R"("resumes":1)", R"("resumes":"1")"},
                    Case{"resumes", R"("resumes":1)", R"("resumes":-1)"},
                    Case{"resumes", R"("resumes":1)", R"("resumes":1e300)"},
                    Case{"history", R"("history":[])", R"("history":{})"},
                    Case{"plan", R"("plan":{)", R"("plan":[{)"});
  std::string text = valid;
  text.replace(text.find(c.from), c.from.size(), c.to);
  if (c.field == "plan") text.insert(text.size() - 1, "]");
  check_refused_as_corrupt(text, c.field);
}

TEST_CASE("a flow record's versions are read back as written: target, from and denylist") {
  Rig rig;
  REQUIRE(write_file_atomic(path_join(rig.state, "flow.json"),
                            R"({"state":"idle","target":"","from":"","denylist":["1.5","2.0"]})"));
  auto flow = rig.start();
  CHECK_FALSE(flow.record().target);
  CHECK_FALSE(flow.record().from);
  CHECK(flow.record().denylist == std::vector<Version>{"1.5"_v, "2.0"_v});
}

TEST_CASE("a flow record reads back equal from what flow_record_to_json makes of it, before and after its text") {
  FlowRecord r;
  r.state = S::staged;
  r.target = "2.0"_v;
  r.from = "1.0"_v;
  r.last_error = "health.failed: required/50-web";
  r.resumes = UpdateFlow::kMaxResumes;
  r.denylist = {"1.5"_v};
  r.history = {nlohmann::json{{"target", "1.5"}, {"result", "rolled-back"}}};
  r.plan = ReleasePlan{"2.0"_v, false, "1.0"_v, 42, "offered", {}};
  auto direct = flow_record_from_json(flow_record_to_json(r));
  REQUIRE(direct);
  CHECK(*direct == r);
  auto through_text = flow_record_from_json(nlohmann::json::parse(flow_record_to_json(r).dump()));
  REQUIRE(through_text);
  CHECK(*through_text == r);
}
