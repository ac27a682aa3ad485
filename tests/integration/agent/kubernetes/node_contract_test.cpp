// The Node contract end to end: the real daemon on a sandbox host (`ballast daemon
// --simulate-reboot`) with kubernetes.enabled, kube-apiserver.mjs as the API server, and the
// controller side driven by real clients: kubectl (annotate, get -o json) and a controller
// script on @kubernetes/client-node (request, wait for the answer).
#include <future>
#include <thread>

#include <algorithm>
#include <iterator>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/kubernetes/kube_api_server.hpp"
#include "tests/integration/agent/reboot/simulated_host.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace std::chrono_literals;
using namespace ballast::version_literals;
using ballast::testing::KubeApiServer;
using ballast::testing::SimulatedHost;
using nlohmann::json;

namespace {

// The sandbox host as Node node-a; no check by the timer (the requests start the updates).
struct KubeHost {
  SimulatedHost s;
  KubeApiServer api;

  explicit KubeHost(const std::string& rollback = "agent") { use(api.kubelet_conf(), rollback); }
  // The agent's kubeconfig.
  void use(const std::string& kubeconfig, const std::string& rollback = "agent") {
    s.drop_in("[update]\ncheck_interval = \"1h\"\n[kubernetes]\nenabled = true\nkubeconfig = \"" + kubeconfig +
              "\"\nrollback = \"" + rollback + "\"\nheartbeat_interval = \"1h\"\n");
  }
  std::vector<std::string> daemon_argv() const {
    auto argv = s.host_args();
    for (auto a : {"daemon", "--simulate-reboot", "--no-dbus", "--run-dir"}) argv.push_back(a);
    argv.push_back(s.run);
    return argv;
  }
  // A daemon that ends by itself (a simulated reboot); the timeout only guards a hang.
  std::future<Result<ProcessResult>> daemon_until_reboot() const {
    return std::async(std::launch::async, [argv = daemon_argv()] {
      SpawnOptions o;
      o.timeout = std::chrono::minutes(3);
      return run_process(argv, o);
    });
  }
  // A daemon the test ends (SIGTERM) when `running` goes out of scope.
  testing::ChildProcess daemon(const std::string& stderr_path = "") const {
    auto p = testing::ChildProcess::spawn(daemon_argv(), stderr_path);
    REQUIRE(p);
    return std::move(*p);
  }
};

// The daemon's log (its stderr in `path`) once it holds `text`; the bound only guards a hang.
std::string log_with(const std::string& path, const std::string& text) {
  std::string log;
  for (int i = 0; i < 600 && log.find(text) == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    log = read_file(path).value_or("");
  }
  return log;
}

std::vector<std::string> requests_of(const KubeApiServer& api) {
  return api.admin("GET", "/admin/stats")["requests"].get<std::vector<std::string>>();
}

ProcessResult ended(std::future<Result<ProcessResult>>& daemon) {
  auto r = daemon.get();
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->exit_code == 0);
  return *r;
}

}  // namespace

TEST_CASE("a stage request, then a reboot request: Staged before the reboot, Committed after it, each carried out once") {
  KubeHost k;
  auto first = k.daemon_until_reboot();
  k.api.request(R"({"schemaVersion":1,"operationId":"s1","operation":"stage","version":"2.0"})");
  json staged = k.api.wait_for("s1", "Staged,Failed");
  CHECK(staged["phase"] == "Staged");
  CHECK(staged["stagedVersion"] == "2.0");
  CHECK(staged["bootedVersion"] == "1.0");
  CHECK(staged["pinnedVersion"] == "2.0");
  CHECK(staged["lastError"].is_null());
  CHECK(k.s.flow()["state"] == "waiting-to-reboot");  // held: a stage request does not reboot
  // The same operation again, written differently: not carried out twice.
  k.api.request(R"({"operation":"stage","operationId":"s1","schemaVersion":1,"version":"2.0"})");
  auto reboot = k.api.controller({"request", "node-a", R"({"schemaVersion":1,"operationId":"r1","operation":"reboot"})"});
  REQUIRE(reboot.exit_code == 0);
  auto r = ended(first);
  CHECK_THAT(r.err, Catch::Contains("operation s1 was carried out already"));
  CHECK(k.s.booted() == "2.0");

  auto second = k.daemon();  // verifies 2.0 and commits it; r1 is not carried out again
  json committed = k.api.wait_for("r1", "Committed,Failed,RolledBack");
  CHECK(committed["phase"] == "Committed");
  CHECK(committed["bootedVersion"] == "2.0");
  CHECK(committed["rollbackVersion"] == "1.0");
  second.stop();
  CHECK(k.s.entry("2.0").state == boot::EntryState::good);
  CHECK(k.s.flow()["history"].size() == 1);
  // kubectl reads the contract back: the request as the controller wrote it, the status as JSON.
  json annotations = k.api.node()["metadata"]["annotations"];
  CHECK(json::parse(annotations["ballast.dev/update-request"].get<std::string>())["operationId"] == "r1");
  CHECK(json::parse(annotations["ballast.dev/update-status"].get<std::string>())["phase"] == "Committed");
}

TEST_CASE("a bad request is answered with its error and nothing is carried out") {
  KubeHost k;
  auto running = k.daemon();
  k.api.request(R"({"schemaVersion":1,"operationId":"b1","operation":"stage","version":"not a version!"})");
  json s = k.api.wait_for("b1", "Idle");
  running.stop();
  CHECK(s["lastError"]["code"] == "kubernetes.bad-request");
  CHECK_THAT(s["lastError"]["message"].get<std::string>(), Catch::Contains("version"));
  CHECK(s["stagedVersion"] == "");
  CHECK_FALSE(path_exists(k.s.h.state + "/flow.json"));  // no update was started
  CHECK_FALSE(path_exists(k.s.h.layout().deployment("2.0"_v)));
}

TEST_CASE("with rollback = controller a release failing its health checks is reported Failed and rolled back on request") {
  KubeHost k("controller");
  auto first = k.daemon_until_reboot();
  k.api.request(R"({"schemaVersion":1,"operationId":"r1","operation":"reboot","version":"2.0"})");
  ended(first);
  REQUIRE(k.s.booted() == "2.0");
  // A required check that fails, in 2.0's own /etc.
  REQUIRE(make_dirs(k.s.h.layout().deployment("2.0"_v) + "/etc/ballast/health.d/required"));
  REQUIRE(write_file_atomic(k.s.h.layout().deployment("2.0"_v) + "/etc/ballast/health.d/required/50-local",
                            "#!/bin/sh\necho broken >&2\nexit 1\n", 0755));

  auto second = k.daemon_until_reboot();
  json failed = k.api.wait_for("r1", "Failed,RolledBack,Committed");
  CHECK(failed["phase"] == "Failed");
  CHECK(failed["lastError"]["code"] == "health.failed");
  CHECK(failed["bootedVersion"] == "2.0");  // the agent did not roll back by itself
  CHECK(k.s.entry("2.0").state == boot::EntryState::bad);
  // Node Problem Detector's plugin sees the failed update.
  REQUIRE(make_dirs(k.s.base + "/npd-health"));
  auto npd = run_process({testing::kBallast, "--state-dir", k.s.h.state, "--config-dir", k.s.config, "health", "--npd",
                          "--no-failed-units", "--dir", k.s.base + "/npd-health"});
  REQUIRE(npd);
  CHECK(npd->exit_code == 1);
  CHECK_THAT(npd->out, Catch::StartsWith("BallastUpdateFailed: 2.0: ") && Catch::Contains("[health.failed]"));
  k.api.request(R"({"schemaVersion":1,"operationId":"rb1","operation":"rollback"})");
  ended(second);
  CHECK(k.s.booted() == "1.0");

  auto third = k.daemon();
  json back = k.api.wait_for("rb1", "RolledBack,Failed");
  third.stop();
  CHECK(back["phase"] == "RolledBack");
  CHECK(back["rolledBackFrom"] == "2.0");
  CHECK(back["bootedVersion"] == "1.0");
}

TEST_CASE("a watch ended by 410 Gone lists again, and an API server away and back gets the newest request and a current status") {
  KubeHost k;
  auto running = k.daemon();
  k.api.request(R"({"schemaVersion":1,"operationId":"p1","operation":"pin","version":"2.0"})");
  CHECK(k.api.wait_for("p1", "Idle")["pinnedVersion"] == "2.0");
  int lists = k.api.admin("GET", "/admin/stats")["lists"];

  k.api.admin("POST", "/admin/compact");  // the open watch gets ERROR 410
  k.api.request(R"({"schemaVersion":1,"operationId":"p2","operation":"unpin"})");
  CHECK(k.api.wait_for("p2", "Idle")["pinnedVersion"] == "");
  CHECK(k.api.admin("GET", "/admin/stats")["lists"].get<int>() > lists);

  k.api.stop();
  k.api.start();  // same port, same Nodes; the agent is backing off
  k.api.request(R"({"schemaVersion":1,"operationId":"p3","operation":"pin","version":"1.0"})");
  json s = k.api.wait_for("p3", "Idle");
  running.stop();
  CHECK(s["pinnedVersion"] == "1.0");
  CHECK(s["bootedVersion"] == "1.0");
}

TEST_CASE("a watch answered 410 Gone at the HTTP level lists again at once; a second 410 in a row backs off, then it recovers") {
  KubeHost k;
  const std::string log = k.s.base + "/daemon.log";
  auto running = k.daemon(log);
  k.api.request(R"({"schemaVersion":1,"operationId":"p1","operation":"pin","version":"2.0"})");
  CHECK(k.api.wait_for("p1", "Idle")["pinnedVersion"] == "2.0");

  // The open watch ends; the next one, from a compacted resourceVersion, gets HTTP 410.
  size_t before = requests_of(k.api).size();
  k.api.admin("POST", "/admin/compact?as=http");
  k.api.request(R"({"schemaVersion":1,"operationId":"p2","operation":"unpin"})");
  CHECK(k.api.wait_for("p2", "Idle")["pinnedVersion"] == "");
  auto first = requests_of(k.api);
  std::vector<std::string> after_first(first.begin() + static_cast<long>(before), first.end());
  REQUIRE(after_first.size() >= 3);
  CHECK(std::vector<std::string>(after_first.begin(), after_first.begin() + 3) ==
        std::vector<std::string>{"watch 410", "list", "watch"});

  // Twice in a row: the HTTP 410, then 410 again on the watch after the relist.
  before = first.size();
  k.api.admin("POST", "/admin/gone-watches?count=1");
  k.api.admin("POST", "/admin/compact?as=http");
  k.api.request(R"({"schemaVersion":1,"operationId":"p3","operation":"pin","version":"1.0"})");
  json s = k.api.wait_for("p3", "Idle");
  CHECK(s["pinnedVersion"] == "1.0");
  auto second = requests_of(k.api);
  std::vector<std::string> after_second;
  // A status patch (a heartbeat or a transition) may come between the relist and the watch.
  std::copy_if(second.begin() + static_cast<long>(before), second.end(), std::back_inserter(after_second),
               [](const std::string& r) { return r != "patch"; });
  REQUIRE(after_second.size() >= 5);
  CHECK(std::vector<std::string>(after_second.begin(), after_second.begin() + 5) ==
        std::vector<std::string>{"watch 410", "list", "watch 410", "list", "watch"});
  running.stop();
  // Each first 410 was listed again at once; only the one right after a relist waited its backoff.
  const std::string logged = *read_file(log);
  auto count = [&](const std::string& text) {
    size_t n = 0;
    for (size_t at = logged.find(text); at != std::string::npos; at = logged.find(text, at + 1)) ++n;
    return n;
  };
  CHECK(count("the watch's resourceVersion is gone; listing again") == 2);
  CHECK(count("[kubernetes.gone]; again in ") == 1);
}

TEST_CASE("the agent follows its Node with a bearer token from the kubeconfig, inline or in a tokenFile, and a wrong one is a clear 401") {
  KubeHost k;
  k.use(k.api.node_kubeconfig("token.conf", "    token: node-token\n"));
  {
    auto running = k.daemon();
    k.api.request(R"({"schemaVersion":1,"operationId":"t1","operation":"pin","version":"2.0"})");
    CHECK(k.api.wait_for("t1", "Idle")["pinnedVersion"] == "2.0");
  }
  REQUIRE(write_file_atomic(k.api.dir + "/token", "node-token\n", 0600));
  k.use(k.api.node_kubeconfig("token-file.conf", "    tokenFile: token\n"));
  {
    auto running = k.daemon();
    k.api.request(R"({"schemaVersion":1,"operationId":"t2","operation":"unpin"})");
    CHECK(k.api.wait_for("t2", "Idle")["pinnedVersion"] == "");
  }
  k.use(k.api.node_kubeconfig("wrong.conf", "    token: not-the-token\n"));
  const std::string log = k.s.base + "/daemon.log";
  auto running = k.daemon(log);
  auto logged = log_with(log, "kubernetes.unauthorized");
  running.stop();
  CHECK_THAT(logged, Catch::Contains("kubernetes: watching Node node-a: GET /api/v1/nodes?fieldSelector=metadata.name%3Dnode-a: HTTP 401: "
                                     "Unauthorized (the API server refused the kubeconfig's credentials) [kubernetes.unauthorized]"));
  auto requests = requests_of(k.api);
  CHECK(requests.back() == "401");
}
