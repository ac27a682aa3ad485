#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>

#include "agent/report/outbox.hpp"
#include "common/file.hpp"
#include "tests/unit/agent/report/journal_capture.hpp"

using namespace ballast;
using namespace ballast::agent::report;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct OutboxFixture {
  std::string root = *make_temp_dir("ballast-outbox-test");
  FakeClock clock;
  repository::FakeHttpClient http;
  std::vector<long> statuses;  // answers in order; 202 once used up
  OutboxFixture() {
    http.on_post = [this](const repository::FakeHttpClient::Post&) -> Result<repository::HttpResponse> {
      long s = 202;
      if (!statuses.empty()) {
        s = statuses.front();
        statuses.erase(statuses.begin());
      }
      if (s == 0) return fail("http.transfer", "connection refused");
      return repository::HttpResponse{s, ""};
    };
  }
  ~OutboxFixture() { (void)remove_tree(root); }
  std::string dir() const { return root + "/outbox"; }
  OutboxOptions options() const {
    OutboxOptions o;
    o.dir = dir();
    o.node_id = "node-a";
    o.endpoint = "https://sink.example/events";
    o.jitter_seed = 7;
    return o;
  }
  std::unique_ptr<Outbox> open(OutboxOptions o) {
    auto box = Outbox::open(std::move(o), http, clock);
    REQUIRE(box);
    return std::move(*box);
  }
  std::unique_ptr<Outbox> open() { return open(options()); }
  std::vector<std::string> event_files() const {
    std::vector<std::string> out;
    auto names = list_dir(dir());
    REQUIRE(names);
    for (const auto& n : *names)
      if (n.size() > 5 && n.substr(n.size() - 5) == ".json" && n != "meta.json") out.push_back(n);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> posted_ids() const {
    std::vector<std::string> ids;
    for (const auto& p : http.posts) ids.push_back(json::parse(p.body)["id"].get<std::string>());
    return ids;
  }
};

bool has_header(const repository::FakeHttpClient::Post& p, const std::string& h) {
  return std::find(p.headers.begin(), p.headers.end(), h) != p.headers.end();
}

}  // namespace

TEST_CASE("a reported event is written to the outbox as a CloudEvents 1.0 structured event before anything is sent",
          "[report][outbox]") {
  OutboxFixture f;
  auto box = f.open();
  box->report("staged", {{"version", "2.0"}, {"from", "1.0"}});
  CHECK(f.http.posts.empty());
  auto files = f.event_files();
  REQUIRE(files.size() == 1);
  json e = json::parse(*read_file(f.dir() + "/" + files[0]));
  CHECK(e["specversion"] == "1.0");
  CHECK(e["id"] == "node-a-1");
  CHECK(e["source"] == "ballast://node-a");
  CHECK(e["type"] == "dev.ballast.staged");
  CHECK(e["time"] == "2026-01-01T00:00:00.000Z");
  CHECK(e["datacontenttype"] == "application/json");
  CHECK(e["subject"] == "2.0");
  CHECK(e["data"] == json({{"version", "2.0"}, {"from", "1.0"}}));

  // An event without a version has no subject, and the ids count up.
  f.clock.advance(1500ms);
  auto checked = box->enqueue("checked", {{"available", nullptr}});
  REQUIRE(checked);
  CHECK(!checked->contains("subject"));
  CHECK((*checked)["id"] == "node-a-2");
  CHECK((*checked)["time"] == "2026-01-01T00:00:01.500Z");
  auto rolled = box->enqueue("rolled-back", {{"from", "2.0"}, {"to", "1.0"}, {"reason", "unhealthy"}});
  REQUIRE(rolled);
  CHECK((*rolled)["subject"] == "2.0");
  CHECK(box->pending() == 3);
}

TEST_CASE("flush posts pending events oldest first as application/cloudevents+json and deletes each after a 2xx",
          "[report][outbox]") {
  OutboxFixture f;
  auto box = f.open();
  box->report("checked", {{"available", "2.0"}});
  box->report("staged", {{"version", "2.0"}});
  box->report("rebooting", {{"version", "2.0"}});
  f.statuses = {200, 201, 204};
  auto r = box->flush();
  REQUIRE(r);
  CHECK(r->sent == 3);
  CHECK(r->pending == 0);
  CHECK(f.posted_ids() == std::vector<std::string>{"node-a-1", "node-a-2", "node-a-3"});
  for (const auto& p : f.http.posts) {
    CHECK(p.url == "https://sink.example/events");
    CHECK(has_header(p, "Content-Type: application/cloudevents+json; charset=utf-8"));
  }
  CHECK(json::parse(f.http.posts[1].body)["type"] == "dev.ballast.staged");
  CHECK(f.event_files().empty());
  CHECK(!box->next_retry());
}

TEST_CASE("an event is deleted only after a 2xx: redirects, client and server errors keep it", "[report][outbox]") {
  OutboxFixture f;
  auto box = f.open();
  box->report("committed", {{"version", "2.0"}});
  for (long status : {301L, 400L, 401L, 404L, 500L, 503L}) {
    f.statuses = {status};
    auto r = box->flush(/*force=*/true);
    REQUIRE(r);
    INFO("status " << status);
    CHECK(r->sent == 0);
    CHECK(r->last_error == "HTTP status " + std::to_string(status));
    CHECK(f.event_files().size() == 1);
  }
  f.statuses = {0};  // a transport failure
  REQUIRE(box->flush(true));
  CHECK(f.event_files().size() == 1);
  REQUIRE(box->flush(true));
  CHECK(f.event_files().empty());
  // Every attempt carried the same event.
  auto ids = f.posted_ids();
  CHECK(ids.size() == 8);
  CHECK(std::all_of(ids.begin(), ids.end(), [](const std::string& id) { return id == "node-a-1"; }));
}

TEST_CASE("a failed post stops the flush and backs off exponentially with jitter until a 2xx", "[report][outbox]") {
  OutboxFixture f;
  auto opts = f.options();
  opts.backoff_initial = 2s;
  opts.backoff_max = 30s;
  auto box = f.open(opts);
  box->report("staged", {{"version", "2.0"}});
  box->report("rebooting", {{"version", "2.0"}});
  REQUIRE(box->next_retry() == f.clock.monotonic());  // nothing failed yet: flush at once

  f.statuses = std::vector<long>(10, 503);
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 6; ++i) {
    size_t before = f.http.posts.size();
    auto r = box->flush();
    REQUIRE(r);
    CHECK(f.http.posts.size() == before + 1);  // stopped at the first failure
    CHECK(r->pending == 2);
    auto at = box->next_retry();
    REQUIRE(at);
    delays.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(*at - f.clock.monotonic()));
    // While backing off, flush() sends nothing.
    auto early = box->flush();
    REQUIRE(early);
    CHECK(early->deferred);
    CHECK(f.http.posts.size() == before + 1);
    f.clock.advance(*at - f.clock.monotonic());
  }
  // Equal jitter: each delay lies in [d/2, d] for d = 2s, 4s, 8s, 16s, 30s (capped), 30s.
  const std::vector<std::chrono::milliseconds> caps = {2s, 4s, 8s, 16s, 30s, 30s};
  for (size_t i = 0; i < caps.size(); ++i) {
    INFO("attempt " << i + 1 << ": " << delays[i].count() << " ms");
    CHECK(delays[i] >= caps[i] / 2);
    CHECK(delays[i] <= caps[i]);
  }
  // Two capped delays differ: the jitter is random, not a fixed fraction.
  CHECK(delays[4] != delays[5]);
  CHECK(box->consecutive_failures() == 6);

  f.statuses.clear();
  auto r = box->flush();
  REQUIRE(r);
  CHECK(r->sent == 2);
  CHECK(box->consecutive_failures() == 0);
  CHECK(!box->next_retry());
}

TEST_CASE("a crash between the POST and the delete sends the same event with the same id again",
          "[report][outbox]") {
  OutboxFixture f;
  {
    auto box = f.open();
    box->report("committed", {{"version", "2.0"}});
    // The sink accepts the event, then the agent dies before it deletes the file.
    f.http.on_post = [](const repository::FakeHttpClient::Post&) -> Result<repository::HttpResponse> {
      throw std::runtime_error("agent killed");
    };
    CHECK_THROWS(box->flush());
  }
  REQUIRE(f.http.posts.size() == 1);
  OutboxFixture g;  // a sink that accepts
  auto box = Outbox::open(f.options(), g.http, f.clock);
  REQUIRE(box);
  REQUIRE((*box)->pending() == 1);
  REQUIRE((*box)->flush());
  REQUIRE(g.http.posts.size() == 1);
  CHECK(g.http.posts[0].body == f.http.posts[0].body);  // byte for byte: same id, same time
  CHECK(json::parse(g.http.posts[0].body)["id"] == "node-a-1");
  // A new event after the restart gets a new id, never the re-sent one.
  auto next = (*box)->enqueue("heartbeat", json::object());
  REQUIRE(next);
  CHECK((*next)["id"] == "node-a-2");
}

TEST_CASE("the sequence survives restarts, so ids are unique even after the outbox emptied", "[report][outbox]") {
  OutboxFixture f;
  {
    auto box = f.open();
    box->report("checked", json::object());
    box->report("checked", json::object());
    REQUIRE(box->flush());
    REQUIRE(f.event_files().empty());
  }
  auto box = f.open();
  auto e = box->enqueue("checked", json::object());
  REQUIRE(e);
  CHECK((*e)["id"] == "node-a-3");

  // A lost sequence file: ids continue above anything this outbox can have used.
  REQUIRE(write_file_atomic(f.dir() + "/meta.json", "{ not json"));
  box.reset();
  testing::JournalCapture journal;
  box = f.open();
  auto after = box->enqueue("checked", json::object());
  REQUIRE(after);
  std::string id = (*after)["id"];
  CHECK(std::stoull(id.substr(std::string("node-a-").size())) > 3);
  CHECK(path_exists(f.dir() + "/quarantine/meta.json"));
}

TEST_CASE("a corrupt outbox file is quarantined with a log and the other events are still sent", "[report][outbox]") {
  OutboxFixture f;
  {
    auto box = f.open();
    box->report("staged", {{"version", "2.0"}});
    box->report("rebooting", {{"version", "2.0"}});
    box->report("booted", {{"version", "2.0"}});
  }
  auto files = f.event_files();
  REQUIRE(files.size() == 3);
  REQUIRE(write_file_atomic(f.dir() + "/" + files[1], "{\"specversion\": \"1.0\", \"id\": "));  // torn
  REQUIRE(write_file_atomic(f.dir() + "/stray.txt", "hello"));
  REQUIRE(write_file_atomic(f.dir() + "/.leftover.tmp123", "partial"));

  testing::JournalCapture journal;
  REQUIRE(journal.bound());
  auto box = f.open();
  CHECK(box->pending() == 2);
  CHECK(path_exists(f.dir() + "/quarantine/" + files[1]));
  CHECK(path_exists(f.dir() + "/quarantine/stray.txt"));
  CHECK(!path_exists(f.dir() + "/.leftover.tmp123"));
  auto records = journal.take();
  std::vector<std::string> logged;
  for (const auto& r : records)
    if (r.count("BALLAST_OUTBOX_FILE")) {
      logged.push_back(testing::field(r, "BALLAST_OUTBOX_FILE"));
      CHECK(testing::field(r, "PRIORITY") == "4");
    }
  CHECK(std::count(logged.begin(), logged.end(), files[1]) == 1);
  CHECK(std::count(logged.begin(), logged.end(), "stray.txt") == 1);

  // A file spoiled after it was loaded is caught at flush time too.
  REQUIRE(write_file_atomic(f.dir() + "/" + files[2], "[]"));
  auto r = box->flush();
  REQUIRE(r);
  CHECK(r->sent == 1);
  CHECK(r->quarantined == 1);
  CHECK(f.posted_ids() == std::vector<std::string>{"node-a-1"});
  CHECK(path_exists(f.dir() + "/quarantine/" + files[2]));
  CHECK(f.event_files().empty());
}

TEST_CASE("the outbox is bounded: heartbeats go first, then check results, never a lifecycle event; drops are counted",
          "[report][outbox]") {
  OutboxFixture f;
  auto opts = f.options();
  opts.max_events = 3;
  {
    auto box = f.open(opts);
    box->report("staged", {{"version", "2.0"}});     // 1
    box->report("heartbeat", json::object());        // 2
    box->report("heartbeat", json::object());        // 3
    box->report("committed", {{"version", "2.0"}});  // 4: drops 2
    CHECK(box->dropped() == 1);
    box->report("checked", json::object());          // 5: drops 3
    box->report("checked", json::object());          // 6: no heartbeat left, drops the check result 5
    CHECK(box->dropped() == 3);
    CHECK(box->pending() == 3);
    box->report("rebooting", {{"version", "3.0"}});  // 7: drops 6
    box->report("booted", {{"version", "3.0"}});     // 8: only lifecycle events left: kept beyond the bound
    box->report("heartbeat", json::object());        // 9: nothing it may displace: dropped itself
    CHECK(box->pending() == 4);
    CHECK(box->dropped() == 5);
    CHECK(box->dropped_by_type() == std::map<std::string, uint64_t>{{"checked", 2}, {"heartbeat", 3}});
  }
  auto box = f.open(opts);
  CHECK(box->dropped() == 5);  // persisted, by type too
  CHECK(box->dropped_by_type() == std::map<std::string, uint64_t>{{"checked", 2}, {"heartbeat", 3}});
  REQUIRE(box->flush());
  CHECK(f.posted_ids() == std::vector<std::string>{"node-a-1", "node-a-4", "node-a-7", "node-a-8"});

  // The byte bound: room for about two events.
  OutboxFixture g;
  auto small = g.options();
  small.max_bytes = 700;
  auto b = g.open(small);
  for (int i = 0; i < 5; ++i) b->report("checked", {{"available", nullptr}});
  CHECK(b->pending_bytes() <= 700);
  CHECK(b->pending() >= 1);
  CHECK(b->dropped() == 5 - b->pending());
  // An event larger than the whole outbox is refused, not half-written.
  auto huge = b->enqueue("checked", {{"blob", std::string(800, 'x')}});
  REQUIRE(!huge);
  CHECK(huge.error().code == "report.too-large");
  CHECK(g.event_files().size() == b->pending());
}

TEST_CASE("the bearer token is read from its file at every flush; without it nothing is sent", "[report][outbox]") {
  OutboxFixture f;
  auto opts = f.options();
  const std::string token_file = f.root + "/token";
  opts.credentials = repository::bearer_file_credentials(token_file);
  REQUIRE(write_file_atomic(token_file, "s3cret\n"));
  auto box = f.open(opts);
  box->report("checked", json::object());
  REQUIRE(box->flush());
  REQUIRE(f.http.posts.size() == 1);
  CHECK(has_header(f.http.posts[0], "Authorization: Bearer s3cret"));

  REQUIRE(write_file_atomic(token_file, "rotated"));
  box->report("checked", json::object());
  REQUIRE(box->flush());
  REQUIRE(f.http.posts.size() == 2);
  CHECK(has_header(f.http.posts[1], "Authorization: Bearer rotated"));

  REQUIRE(remove_if_exists(token_file));
  box->report("checked", json::object());
  auto r = box->flush();
  REQUIRE(r);
  CHECK(f.http.posts.size() == 2);
  CHECK(r->pending == 1);
  CHECK(!r->last_error.empty());
  CHECK(box->consecutive_failures() == 1);
}

TEST_CASE("with reporting off (no endpoint) no event is written and flush sends nothing", "[report][outbox]") {
  OutboxFixture f;
  auto opts = f.options();
  opts.endpoint.clear();
  auto box = f.open(opts);
  box->report("checked", json::object());
  box->report("staged", {{"version", "2.0"}});
  box->report_heartbeat(agent::AgentStatus{});
  CHECK(f.event_files().empty());
  CHECK(box->pending() == 0);
  auto r = box->flush(true);
  REQUIRE(r);
  CHECK(r->deferred);
  CHECK(f.http.posts.empty());
  CHECK(!box->next_retry());
}

TEST_CASE("a flood of check results with the sink unreachable keeps the pending staged event", "[report][outbox]") {
  OutboxFixture f;
  f.statuses.assign(2000, 0);  // connection refused
  auto box = f.open();
  box->report("staged", {{"version", "2.0"}});
  REQUIRE(box->flush());
  for (int i = 0; i < 1500; ++i) box->report("checked", {{"available", "2.0"}});
  CHECK(box->pending() == 1000);
  CHECK(box->dropped_by_type() == std::map<std::string, uint64_t>{{"checked", 501}});
  f.statuses.clear();
  f.clock.advance(1h);
  REQUIRE(box->flush());
  REQUIRE(!f.http.posts.empty());
  // The first post was the failed one; the first one after the outage is the staged event.
  CHECK(json::parse(f.http.posts[1].body)["type"] == "dev.ballast.staged");
}

TEST_CASE("bad event types and incomplete options are refused", "[report][outbox]") {
  OutboxFixture f;
  auto box = f.open();
  for (const char* type : {"", "../escape", "Staged", "a/b", "with space"}) {
    auto r = box->enqueue(type, json::object());
    INFO(type);
    REQUIRE(!r);
    CHECK(r.error().code == "report.bad-type");
  }
  CHECK(f.event_files().empty());
  auto no_node = f.options();
  no_node.node_id.clear();
  auto r = Outbox::open(no_node, f.http, f.clock);
  REQUIRE(!r);
  CHECK(r.error().code == "report.config");
}

TEST_CASE("a heartbeat carries the status, the booted version as subject and the drop count", "[report][outbox]") {
  OutboxFixture f;
  auto box = f.open();
  agent::AgentStatus s;
  s.state = "idle";
  s.booted = "1.4";
  s.last_check = 1767225600;
  auto e = box->enqueue("heartbeat", heartbeat_data(s, 7));
  REQUIRE(e);
  CHECK((*e)["type"] == "dev.ballast.heartbeat");
  CHECK((*e)["subject"] == "1.4");
  CHECK((*e)["data"]["state"] == "idle");
  CHECK((*e)["data"]["booted"] == "1.4");
  CHECK((*e)["data"]["lastCheck"] == 1767225600);
  CHECK((*e)["data"]["droppedEvents"] == 7);

  // The daemon's shortcut puts the outbox's own drop count in.
  box->report_heartbeat(s);
  auto files = f.event_files();
  REQUIRE(files.size() == 2);
  json stored = json::parse(*read_file(f.dir() + "/" + files[1]));
  CHECK(stored["type"] == "dev.ballast.heartbeat");
  CHECK(stored["data"]["droppedEvents"] == 0);
  CHECK(stored["data"]["state"] == "idle");
}

TEST_CASE("the outbox options and the sink's TLS settings come from report.*", "[report][outbox]") {
  Config c;
  REQUIRE(c.merge_text("[report]\nendpoint = \"https://sink/e\"\nbearer_token_file = \"/etc/t\"\n"
                       "ca_bundle = \"/etc/ca.pem\"\nclient_cert = \"/etc/c.pem\"\nclient_key = \"/etc/c.key\"\n",
                       "10-report.toml"));
  auto o = outbox_options_from_config(c, "/var/lib/ballast", "n1");
  CHECK(o.dir == "/var/lib/ballast/outbox");
  CHECK(o.endpoint == "https://sink/e");
  REQUIRE(o.credentials);
  CHECK(o.credentials->authorize().error().message.find("/etc/t") != std::string::npos);  // the bearer token file
  CHECK(o.node_id == "n1");
  auto s = report_http_settings(c);
  CHECK(s.ca_bundle == "/etc/ca.pem");
  CHECK(s.client_cert == "/etc/c.pem");
  CHECK(s.client_key == "/etc/c.key");
  CHECK(s.retries == 0);
}

TEST_CASE("a 401 from the sink refreshes the outbox's credentials and the event is kept for the next flush",
          "[report][outbox]") {
  OutboxFixture f;
  auto opts = f.options();
  auto creds = std::make_shared<repository::FakeCredentialProvider>();
  creds->authorization.headers = {"aeg-sas-key: k3y"};
  creds->refreshable = true;
  opts.credentials = creds;
  auto box = f.open(opts);
  box->report("checked", json::object());
  f.statuses = {401};
  auto first = box->flush();
  REQUIRE(first);
  CHECK(first->sent == 0);
  CHECK(first->pending == 1);
  CHECK(creds->refreshed == 1);
  auto second = box->flush(true);
  REQUIRE(second);
  CHECK(second->sent == 1);
  REQUIRE(f.http.posts.size() == 2);
  CHECK(has_header(f.http.posts[1], "aeg-sas-key: k3y"));
  CHECK(f.http.posts[0].body == f.http.posts[1].body);  // the same event, the same id
}

namespace {

// The ids of each batch POSTed, in order.
std::vector<std::vector<std::string>> posted_batches(const repository::FakeHttpClient& http) {
  std::vector<std::vector<std::string>> out;
  for (const auto& p : http.posts) {
    std::vector<std::string> ids;
    for (const auto& e : json::parse(p.body)) ids.push_back(e["id"].get<std::string>());
    out.push_back(ids);
  }
  return out;
}

OutboxOptions batch_options(const OutboxFixture& f) {
  auto o = f.options();
  o.batch = true;
  return o;
}

std::vector<std::string> ids(std::initializer_list<int> seqs) {
  std::vector<std::string> out;
  for (int s : seqs) out.push_back("node-a-" + std::to_string(s));
  return out;
}

}  // namespace

TEST_CASE("a batch takes the oldest events that fit in its count and its bytes, and at least one", "[report][batch]") {
  CHECK(batch_size({}, 10, 1000) == 0);
  CHECK(batch_size({100, 100, 100}, 2, 1000) == 2);
  // The array of two 100-byte events (each stored with its newline) is 201 bytes.
  CHECK(batch_size({100, 100, 100}, 10, 201) == 2);
  CHECK(batch_size({100, 100, 100}, 10, 200) == 1);
  CHECK(batch_size({5000, 100}, 10, 1000) == 1);  // too large for any batch: sent alone
}

TEST_CASE("in batch mode the pending events go oldest first as CloudEvents arrays of at most batch_max_events",
          "[report][batch]") {
  OutboxFixture f;
  auto o = batch_options(f);
  o.batch_max_events = 2;
  auto box = f.open(o);
  for (int i = 0; i < 5; ++i) REQUIRE(box->enqueue("checked", {{"n", i}}));
  auto r = box->flush();
  REQUIRE(r);
  CHECK(r->sent == 5);
  CHECK(box->pending() == 0);
  CHECK(posted_batches(f.http) == std::vector<std::vector<std::string>>{ids({1, 2}), ids({3, 4}), ids({5})});
  CHECK(has_header(f.http.posts[0], "Content-Type: application/cloudevents-batch+json; charset=utf-8"));
  auto first = json::parse(f.http.posts[0].body)[0];
  CHECK(first["specversion"] == "1.0");
  CHECK(first["data"]["n"] == 0);
}

TEST_CASE("in batch mode a failed POST keeps every event of the batch, and a 413 halves the batch until the sink "
          "takes it",
          "[report][batch]") {
  OutboxFixture f;
  auto box = f.open(batch_options(f));
  for (int i = 0; i < 4; ++i) REQUIRE(box->enqueue("staged", {{"version", "1." + std::to_string(i)}}));
  f.statuses = {500};
  auto failed = box->flush();
  REQUIRE(failed);
  CHECK(failed->sent == 0);
  CHECK(box->pending() == 4);
  CHECK(f.event_files().size() == 4);

  f.http.posts.clear();
  f.statuses = {413, 413};
  auto r = box->flush(true);
  REQUIRE(r);
  CHECK(r->sent == 4);
  CHECK(box->pending() == 0);
  // 4 refused, 2 refused, then batches of 1: every event once, in order, among the accepted ones.
  CHECK(posted_batches(f.http) ==
        std::vector<std::vector<std::string>>{ids({1, 2, 3, 4}), ids({1, 2}), ids({1}), ids({2}), ids({3}), ids({4})});
}

TEST_CASE("in batch mode an event the sink refuses as too large even alone is moved to rejected/ and the events "
          "behind it are sent",
          "[report][batch]") {
  OutboxFixture f;
  const auto o = batch_options(f);
  auto box = f.open(o);
  REQUIRE(box->enqueue("staged", {{"version", "huge"}}));
  REQUIRE(box->enqueue("committed", {{"version", "1.1"}}));
  f.statuses = {413, 413, 202};
  auto r = box->flush();
  REQUIRE(r);
  CHECK(r->rejected == 1);
  CHECK(r->sent == 1);
  CHECK(box->pending() == 0);
  CHECK(posted_batches(f.http).back() == ids({2}));
  auto rejected = list_dir(f.dir() + "/rejected");
  REQUIRE(rejected);
  REQUIRE(rejected->size() == 1);
  CHECK(rejected->front().find(".staged.json") != std::string::npos);
  // A reopened outbox neither sends nor quarantines what was rejected.
  auto reopened = f.open(o);
  CHECK(reopened->pending() == 0);
  CHECK_FALSE(path_exists(f.dir() + "/quarantine"));
}

TEST_CASE("report.format = \"batch\" and its bounds reach the outbox; structured stays the default", "[report][batch]") {
  Config config;
  CHECK_FALSE(outbox_options_from_config(config, "/var/lib/ballast", "n").batch);
  REQUIRE(config.merge_text("[report]\nformat = \"batch\"\nbatch_max_events = 7\nbatch_max_bytes = 4096\n", "t.toml"));
  auto o = outbox_options_from_config(config, "/var/lib/ballast", "n");
  CHECK(o.batch);
  CHECK(o.batch_max_events == 7);
  CHECK(o.batch_max_bytes == 4096);
}
