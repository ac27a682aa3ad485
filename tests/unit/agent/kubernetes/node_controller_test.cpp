#include <catch2/catch.hpp>

#include "agent/kubernetes/node_controller.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace ballast::agent::kubernetes;
using nlohmann::json;

namespace {

// The daemon's API as the controller sees it: records each call, answers from `status`.
struct RecordingAgent final : AgentApi {
  AgentStatus state;
  std::vector<std::string> calls;
  json history_lines = json::array();
  RecordingAgent() {
    state.state = "idle";
    state.booted = "1.0";
  }
  Result<AgentStatus> status() override { return state; }
  Result<json> check() override { return json::object(); }
  Status update(const UpdateOptions& o) override {
    calls.push_back(o.download_only ? "update --download-only" : o.apply ? "update --apply" : "update");
    return ok();
  }
  Status rollback(bool reboot) override {
    calls.push_back(reboot ? "rollback --reboot" : "rollback");
    return ok();
  }
  Status pin(const std::string& v) override {
    calls.push_back("pin " + v);
    state.pinned = v;
    return ok();
  }
  Status unpin() override {
    calls.push_back("unpin");
    return ok();
  }
  Status bless() override { return ok(); }
  Result<json> history() override { return history_lines; }
};

struct Rig {
  std::string state = *make_temp_dir("ballast-k8s-test");
  FakeKubeApi kube;
  RecordingAgent agent;
  FakeClock clock;
  Rig() {
    kube.node.name = "node-a";
    kube.node.resource_version = "1";
  }
  ~Rig() { (void)remove_tree(state); }
  std::unique_ptr<NodeController> open() {
    NodeControllerOptions o;
    o.node_name = "node-a";
    o.state_dir = state;
    auto c = NodeController::open(kube, agent, clock, o);
    REQUIRE(c);
    return std::move(*c);
  }
  // For start(): heartbeats out of the way, backoffs of a few milliseconds.
  NodeControllerOptions threaded_options() const {
    NodeControllerOptions o;
    o.node_name = "node-a";
    o.state_dir = state;
    o.heartbeat = std::chrono::hours(1);
    o.backoff_base = std::chrono::milliseconds(5);
    o.backoff_max = std::chrono::milliseconds(20);
    return o;
  }
  NodeObject with_request(const std::string& request) {
    NodeObject n = kube.node;
    n.annotations[kRequestAnnotation] = request;
    return n;
  }
  json written_status() {
    std::lock_guard lock(kube.mutex);
    REQUIRE(kube.node.annotations.count(kStatusAnnotation));
    return json::parse(kube.node.annotations[kStatusAnnotation]);
  }
};

const std::string kStage = R"({"schemaVersion":1,"operationId":"op-1","operation":"stage","version":"2.0"})";

}  // namespace

TEST_CASE("a stage request pins its version and stages without a reboot, once, also across restarts") {
  Rig rig;
  auto c = rig.open();
  c->on_node(rig.with_request(kStage));
  CHECK(rig.agent.calls == std::vector<std::string>{"pin 2.0", "update --download-only"});
  c->on_node(rig.with_request(kStage));  // our own status patch echoes the Node back
  // The same operationId with other text is the same operation: not carried out again.
  c->on_node(rig.with_request(R"({"operationId":"op-1","schemaVersion":1,"operation":"stage","version":"2.0"})"));
  c.reset();
  auto restarted = rig.open();
  restarted->on_node(rig.with_request(kStage));
  CHECK(rig.agent.calls.size() == 2);
}

TEST_CASE("the status follows the flow's transitions to the terminal answer Staged before a reboot") {
  Rig rig;
  auto c = rig.open();
  c->on_node(rig.with_request(kStage));
  for (auto [from, to] : {std::pair{"idle", "checking"}, {"checking", "staging"}, {"staging", "staged"}, {"staged", "waiting-to-reboot"}})
    c->on_transition(from, to);
  rig.agent.state.staged = "2.0";
  REQUIRE(c->publish());
  json s = rig.written_status();
  CHECK(s["schemaVersion"] == 1);
  CHECK(s["operationId"] == "op-1");
  CHECK(s["operation"] == "stage");
  CHECK(s["phase"] == "Staged");
  CHECK(s["bootedVersion"] == "1.0");
  CHECK(s["stagedVersion"] == "2.0");
  CHECK(s["pinnedVersion"] == "2.0");
  CHECK(s["lastError"].is_null());
  CHECK(s["heartbeat"] == "2026-01-01T00:00:00.000Z");
  // Only the status annotation is written: the controller's request stays as it wrote it.
  REQUIRE(rig.kube.patches.size() == 1);
  CHECK(rig.kube.patches[0].size() == 1);
  CHECK(rig.kube.patches[0].contains(kStatusAnnotation));
}

TEST_CASE("a reboot request applies; after the reboot the flow's commit is the answer Committed") {
  Rig rig;
  auto c = rig.open();
  c->on_node(rig.with_request(R"({"schemaVersion":1,"operationId":"op-2","operation":"reboot"})"));
  CHECK(rig.agent.calls == std::vector<std::string>{"update --apply"});
  c->on_transition("waiting-to-reboot", "rebooting");
  c.reset();
  rig.agent.state.booted = "2.0";
  auto after = rig.open();
  CHECK(after->status_json()["phase"] == "Rebooting");
  after->on_transition("verifying", "committed");
  after->on_transition("committed", "idle");
  json s = after->status_json();
  CHECK(s["phase"] == "Committed");
  CHECK(s["operationId"] == "op-2");
  CHECK(s["rollbackVersion"] == "1.0");
}

TEST_CASE("a bad request carries nothing out and its status names the error under its operationId") {
  Rig rig;
  auto c = rig.open();
  c->on_node(rig.with_request(R"({"schemaVersion":1,"operationId":"op-3","operation":"explode"})"));
  CHECK(rig.agent.calls.empty());
  json s = c->status_json();
  CHECK(s["operationId"] == "op-3");
  CHECK(s["phase"] == "Idle");
  CHECK(s["lastError"]["code"] == "kubernetes.bad-request");
  CHECK_THAT(s["lastError"]["message"].get<std::string>(), Catch::Contains("\"explode\""));
}

TEST_CASE("a rollback request reboots into the previous version and is answered RolledBack after the reboot") {
  Rig rig;
  rig.agent.state.booted = "2.0";
  auto c = rig.open();
  c->on_node(rig.with_request(R"({"schemaVersion":1,"operationId":"op-4","operation":"rollback"})"));
  CHECK(rig.agent.calls == std::vector<std::string>{"rollback --reboot"});
  CHECK(c->status_json()["phase"] == "Rebooting");
  c.reset();
  rig.agent.state.booted = "1.0";
  auto after = rig.open();
  json s = after->status_json();
  CHECK(s["phase"] == "RolledBack");
  CHECK(s["rolledBackFrom"] == "2.0");
}

TEST_CASE("an automatic rollback names the version it left from the flow's history") {
  Rig rig;
  rig.agent.history_lines = json::array({{{"target", "2.0"}, {"from", "1.0"}, {"result", "rolled-back"}}});
  auto c = rig.open();
  c->on_transition("verifying", "rolled-back");
  c->on_transition("rolled-back", "idle");
  json s = c->status_json();
  CHECK(s["phase"] == "RolledBack");
  CHECK(s["rolledBackFrom"] == "2.0");
}

TEST_CASE("a failed flow's status carries its error with the stable code") {
  Rig rig;
  rig.agent.state.last_error = "verifying: health checks failed: web (the controller rolls back) [health.failed]";
  auto c = rig.open();
  c->on_transition("verifying", "failed");
  c->on_transition("failed", "idle");
  json s = c->status_json();
  CHECK(s["phase"] == "Failed");
  CHECK(s["lastError"]["code"] == "health.failed");
}

TEST_CASE("pin and unpin requests are carried out at once") {
  Rig rig;
  auto c = rig.open();
  c->on_node(rig.with_request(R"({"schemaVersion":1,"operationId":"p1","operation":"pin","version":"1.5"})"));
  c->on_node(rig.with_request(R"({"schemaVersion":1,"operationId":"p2","operation":"unpin"})"));
  CHECK(rig.agent.calls == std::vector<std::string>{"pin 1.5", "unpin"});
  CHECK(c->status_json()["operationId"] == "p2");
}

TEST_CASE("a watch that gets 410 Gone lists again and catches up on the request written meanwhile") {
  Rig rig;
  auto c = rig.open();
  REQUIRE(c->sync());  // the first list
  CHECK(rig.kube.lists == 1);
  rig.kube.gone_next = 1;
  auto gone = c->sync();
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == "kubernetes.gone");
  {
    std::lock_guard lock(rig.kube.mutex);
    rig.kube.node.annotations[kRequestAnnotation] = kStage;  // while nobody watched: no event
  }
  REQUIRE(c->sync());
  CHECK(rig.kube.lists == 2);
  CHECK(rig.agent.calls == std::vector<std::string>{"pin 2.0", "update --download-only"});
}

TEST_CASE("a request arriving on the watch is carried out") {
  Rig rig;
  auto c = rig.open();
  REQUIRE(c->sync());
  rig.kube.annotate(kRequestAnnotation, R"({"schemaVersion":1,"operationId":"w1","operation":"reboot"})");
  REQUIRE(c->sync());
  CHECK(rig.agent.calls == std::vector<std::string>{"update --apply"});
  CHECK(rig.kube.lists == 1);  // watched, not listed again
}

TEST_CASE("the writer publishes on a transition and again once the API server is back") {
  Rig rig;
  NodeControllerOptions o = rig.threaded_options();
  {
    std::lock_guard lock(rig.kube.mutex);
    rig.kube.down = Error{"http.transfer", "connection refused", 0, {}};
  }
  auto c = *NodeController::open(rig.kube, rig.agent, rig.clock, o);
  c->start();
  c->on_transition("idle", "checking");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(rig.kube.mutex);
    CHECK(rig.kube.patches.empty());
    rig.kube.down.reset();
  }
  json s;
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(rig.kube.mutex);
      if (rig.kube.node.annotations.count(kStatusAnnotation)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  c->stop();
  CHECK(rig.written_status()["phase"] == "Checking");
}

TEST_CASE("a first 410 Gone relists at once, a second in a row backs off, and a success resets the backoff") {
  using std::chrono::milliseconds;
  const Status gone = fail("kubernetes.gone", "410");
  WatchBackoff b(milliseconds(100), milliseconds(1000), 7);
  CHECK(b.after(gone) == milliseconds(0));
  auto second = b.after(gone);
  CHECK(second >= milliseconds(50));
  CHECK(second <= milliseconds(100));
  CHECK(b.after(gone) >= milliseconds(100));  // doubled
  CHECK(b.after(ok()) == milliseconds(0));
  CHECK(b.after(gone) == milliseconds(0));  // a new first 410
  CHECK(b.after(fail("http.transfer", "refused")) >= milliseconds(50));
}

TEST_CASE("the watcher gets two 410 Gone in a row, lists again after each and then carries out a request") {
  Rig rig;
  NodeControllerOptions o = rig.threaded_options();
  rig.kube.gone_next = 2;
  auto c = *NodeController::open(rig.kube, rig.agent, rig.clock, o);
  c->start();
  auto wait_until = [&](auto done) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lock(rig.kube.mutex);
        if (done()) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  wait_until([&] { return rig.kube.lists >= 3; });
  rig.kube.annotate(kRequestAnnotation, R"({"schemaVersion":1,"operationId":"g1","operation":"pin","version":"2.0"})");
  wait_until([&] {
    auto it = rig.kube.node.annotations.find(kStatusAnnotation);
    return it != rig.kube.node.annotations.end() && json::parse(it->second)["operationId"] == "g1";
  });
  c->stop();
  CHECK(rig.agent.calls == std::vector<std::string>{"pin 2.0"});
  std::lock_guard lock(rig.kube.mutex);
  REQUIRE(rig.kube.calls.size() >= 5);
  CHECK(std::vector<std::string>(rig.kube.calls.begin(), rig.kube.calls.begin() + 5) ==
        std::vector<std::string>{"list", "watch: 410", "list", "watch: 410", "list"});
  CHECK(rig.kube.lists == 3);  // recovered: watching again, not listing
}
