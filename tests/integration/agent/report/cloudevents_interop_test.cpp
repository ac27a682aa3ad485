// Interop of the event outbox with the `cloudevents` npm SDK (tests/interop: run `npm ci` there
// first): a node sink parses and validates every request with HTTP.toEvent + validate() and
// answers 500 for a share of them. Events reported while the sink is down, across a restart of
// the outbox (the daemon's), all arrive once the sink is back: none lost, and any duplicate
// carries the same id and bytes.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/report/outbox.hpp"
#include "common/file.hpp"
#include "tests/integration/support/http_servers.hpp"
#include "tests/temp_dir.hpp"

using namespace ballast;
using ballast::testing::TempDir;
using namespace ballast::agent::report;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {
const std::string kInterop = std::string(BALLAST_SOURCE_ROOT) + "/tests/interop";

struct Sink {
  testing::ChildProcess proc;
  int port = 0;
};

// Starts the sink on `port` (0: any) with `options` (see the script); its log is appended to across runs.
Sink start_sink(const std::string& dir, int port, const std::vector<std::string>& options) {
  std::string port_file = dir + "/port";
  REQUIRE(remove_if_exists(port_file));
  std::vector<std::string> argv = {"node", kInterop + "/cloudevents-sink.mjs", "--port-file", port_file,
                                   "--log", dir + "/sink.log", "--port", std::to_string(port)};
  argv.insert(argv.end(), options.begin(), options.end());
  auto proc = testing::ChildProcess::spawn(argv);
  REQUIRE(proc);
  auto listening = testing::wait_for_port_file(port_file);
  INFO("the cloudevents sink did not start");
  REQUIRE(listening);
  return Sink{std::move(*proc), *listening};
}

Sink start_sink(const std::string& dir, int port, const std::string& token, double fail_fraction) {
  return start_sink(dir, port, {"--token", token, "--fail-fraction", std::to_string(fail_fraction)});
}

std::vector<json> sink_log(const std::string& dir) {
  std::vector<json> out;
  auto text = read_file(dir + "/sink.log");
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// Flushes until the outbox is empty; the sink's 500s make some rounds fail.
void flush_all(Outbox& box) {
  for (int round = 0; round < 100 && box.pending() > 0; ++round) {
    auto r = box.flush(/*force=*/true);
    REQUIRE(r);
  }
  REQUIRE(box.pending() == 0);
}

}  // namespace

TEST_CASE("events reach a cloudevents SDK sink across a sink outage and an agent restart, none lost",
          "[report][interop]") {
  INFO("the npm peers are missing: run `npm ci` in " << kInterop);
  REQUIRE(path_exists(kInterop + "/node_modules/cloudevents/package.json"));
  TempDir t;
  const std::string token = "interop-token";
  REQUIRE(write_file_atomic(t.path + "/token", token + "\n", 0600));
  SystemClock clock;
  repository::HttpSettings settings;
  settings.retries = 0;
  auto http = repository::make_curl_http_client(settings);

  auto options = [&](int port) {
    OutboxOptions o;
    o.dir = t.path + "/state/outbox";
    o.node_id = "interop-node";
    o.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/events";
    o.credentials = repository::bearer_file_credentials(t.path + "/token");
    o.backoff_initial = 1ms;
    o.backoff_max = 10ms;
    return o;
  };

  std::vector<std::string> reported;
  auto report = [&](Outbox& box, const std::string& type, const json& data) {
    auto e = box.enqueue(type, data);
    REQUIRE(e);
    reported.push_back((*e)["id"]);
  };

  auto sink = start_sink(t.path, 0, token, 0.3);
  const int port = sink.port;
  {
    auto box = Outbox::open(options(port), *http, clock);
    REQUIRE(box);
    report(**box, "checked", {{"available", "2.0"}});
    report(**box, "staged", {{"version", "2.0"}, {"from", "1.0"}});
    report(**box, "rebooting", {{"version", "2.0"}});
    flush_all(**box);

    sink.proc.stop();  // the sink goes down
    report(**box, "booted", {{"version", "2.0"}, {"target", "2.0"}});
    report(**box, "health.passed", {{"healthy", true}, {"checks", json::array()}});
    report(**box, "committed", {{"version", "2.0"}, {"from", "1.0"}});
    agent::AgentStatus status;
    status.state = "idle";
    status.booted = "2.0";
    report(**box, "heartbeat", heartbeat_data(status, (*box)->dropped()));
    auto down = (*box)->flush(true);
    REQUIRE(down);
    CHECK(down->sent == 0);
    CHECK(down->last_error.find("http.transfer") != std::string::npos);
    CHECK((*box)->pending() == 4);
  }  // the agent stops

  auto box = Outbox::open(options(port), *http, clock);  // and starts again from the same directory
  REQUIRE(box);
  CHECK((*box)->pending() == 4);
  report(**box, "checked", {{"available", nullptr}});
  sink = start_sink(t.path, port, token, 0.3);  // the sink is back on the same address
  flush_all(**box);

  auto log = sink_log(t.path);
  std::map<std::string, json> accepted;  // id → the event as the SDK parsed it
  std::map<std::string, std::set<std::string>> bodies_by_id;
  int refused = 0;
  for (const auto& entry : log) {
    INFO(entry.dump());
    CHECK(entry["valid"] == true);  // every request passed the SDK's validation
    CHECK(entry["method"] == "POST");
    CHECK(entry["contentType"] == "application/cloudevents+json; charset=utf-8");
    CHECK(entry["source"] == "ballast://interop-node");
    bodies_by_id[entry["id"]].insert(entry["event"].dump());
    if (entry["status"] == 202) accepted[entry["id"]] = entry["event"];
    if (entry["status"] == 500) ++refused;
  }
  CHECK(refused > 0);  // retries really happened
  // Every reported event arrived; nothing else did.
  std::set<std::string> want(reported.begin(), reported.end());
  std::set<std::string> got;
  for (const auto& [id, _] : accepted) got.insert(id);
  CHECK(got == want);
  CHECK(reported.size() == 8);
  // A re-send is the same event: one body per id.
  for (const auto& [id, bodies] : bodies_by_id) {
    INFO(id);
    CHECK(bodies.size() == 1);
  }
  CHECK(accepted.at("interop-node-6")["type"] == "dev.ballast.committed");
  CHECK(accepted.at("interop-node-6")["subject"] == "2.0");
  CHECK(accepted.at("interop-node-7")["data"]["booted"] == "2.0");
  CHECK(accepted.at("interop-node-8")["type"] == "dev.ballast.checked");
}

TEST_CASE("in batch mode events reach an Event Grid-like sink that checks aeg-sas-key across an outage, a 500 and "
          "413s, each exactly once and in order",
          "[report][interop][batch]") {
  REQUIRE(path_exists(kInterop + "/node_modules/cloudevents/package.json"));
  TempDir t;
  const std::string key = "aeg-test-key";
  REQUIRE(write_file_atomic(t.path + "/key", "a-wrong-key\n", 0600));
  SystemClock clock;
  repository::HttpSettings settings;
  settings.retries = 0;
  auto http = repository::make_curl_http_client(settings);
  // A port no one listens on yet: the sink is down.
  auto probe = start_sink(t.path, 0, {});
  const int port = probe.port;
  probe.proc.stop();
  REQUIRE(remove_if_exists(t.path + "/sink.log"));

  OutboxOptions o;
  o.dir = t.path + "/state/outbox";
  o.node_id = "grid-node";
  o.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/api/events";
  o.credentials = repository::header_file_credentials("aeg-sas-key: ", t.path + "/key", "Event Grid access key");
  o.batch = true;
  o.batch_max_events = 8;
  o.backoff_initial = 1ms;
  o.backoff_max = 10ms;
  auto box = Outbox::open(o, *http, clock);
  REQUIRE(box);
  std::vector<std::string> reported;
  for (int i = 0; i < 6; ++i) {
    auto e = (*box)->enqueue(i % 2 ? "staged" : "checked", {{"version", "2." + std::to_string(i)}});
    REQUIRE(e);
    reported.push_back((*e)["id"]);
  }
  auto down = (*box)->flush(true);
  REQUIRE(down);
  CHECK(down->sent == 0);
  CHECK(down->last_error.find("http.transfer") != std::string::npos);

  // Up: the wrong key is refused, then 500, then every batch of more than one event is too large.
  auto sink = start_sink(t.path, port, {"--aeg-sas-key", key, "--batch", "1", "--statuses", "500", "--max-batch", "1"});
  auto refused = (*box)->flush(true);
  REQUIRE(refused);
  CHECK(refused->last_error == "HTTP status 401");
  REQUIRE(write_file_atomic(t.path + "/key", key + "\n", 0600));
  auto failed = (*box)->flush(true);
  REQUIRE(failed);
  CHECK(failed->last_error == "HTTP status 500");
  CHECK((*box)->pending() == 6);
  auto r = (*box)->flush(true);
  REQUIRE(r);
  CHECK(r->sent == 6);
  CHECK((*box)->pending() == 0);

  std::vector<std::string> delivered;
  std::vector<long> answers;
  for (const auto& entry : sink_log(t.path)) {
    INFO(entry.dump());
    answers.push_back(entry["status"]);
    if (entry["status"] == 401) continue;
    CHECK(entry["valid"] == true);  // every element passed the SDK's validation
    CHECK(entry["contentType"] == "application/cloudevents-batch+json; charset=utf-8");
    if (entry["status"] == 202)
      for (const auto& id : entry["ids"]) delivered.push_back(id);
  }
  CHECK(delivered == reported);  // each once, in order
  CHECK(answers == std::vector<long>{401, 500, 413, 413, 202, 202, 202, 202, 202, 202});  // 6 events, then 3, then 1s
}
