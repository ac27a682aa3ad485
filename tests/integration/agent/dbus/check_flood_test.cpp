// Check() is open to every local user and reports a `checked` event: unprivileged callers are
// answered from the last check for a while, so they can neither hammer the repository nor push
// the fleet's pending reports out of the event outbox. Real Server, real Outbox, private bus.
#include <catch2/catch.hpp>

#include <algorithm>

#include "agent/dbus/client.hpp"
#include "agent/dbus/names.hpp"
#include "agent/report/outbox.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/dbus/bus_fixture.hpp"

using namespace ballast;
using namespace std::chrono_literals;

namespace {

// The fake agent, whose checks report into a real outbox as the daemon's do.
class ReportingAgent final : public test::FakeAgent {
 public:
  explicit ReportingAgent(agent::report::Outbox& outbox) : outbox_(outbox) {}
  Result<nlohmann::json> check() override {
    auto r = FakeAgent::check();
    if (r) outbox_.report("checked", {{"available", (*r)["available"]}});
    return r;
  }

 private:
  agent::report::Outbox& outbox_;
};

struct FloodRig {
  std::string root = *make_temp_dir("ballast-check-flood");
  FakeClock clock;
  repository::FakeHttpClient sink;  // unreachable: every POST fails
  std::unique_ptr<agent::report::Outbox> outbox;
  std::unique_ptr<ReportingAgent> agent;
  std::unique_ptr<test::PrivateBus> bus = test::PrivateBus::start();
  std::unique_ptr<test::ServerThread> server;

  explicit FloodRig(std::string admin_group = "") {
    sink.on_post = [](const repository::FakeHttpClient::Post&) -> Result<repository::HttpResponse> {
      return fail("http.transfer", "connection refused");
    };
    agent::report::OutboxOptions o;
    o.dir = root + "/outbox";
    o.node_id = "node-a";
    o.endpoint = "https://sink.example/events";
    auto box = agent::report::Outbox::open(o, sink, clock);
    REQUIRE(box);
    outbox = std::move(*box);
    agent = std::make_unique<ReportingAgent>(*outbox);
    agent::dbus::ServerOptions so;
    so.bus_address = bus->address();
    so.admin_group = std::move(admin_group);
    so.clock = &clock;
    server = test::ServerThread::start(*agent, so);
  }
  ~FloodRig() {
    server.reset();
    (void)remove_tree(root);
  }
  size_t checks() const {
    auto calls = agent->calls();
    return static_cast<size_t>(std::count(calls.begin(), calls.end(), "check"));
  }
  std::vector<std::string> busctl_check() const {
    return {"busctl", "--address=" + bus->address(), "call", agent::dbus::kBusName, agent::dbus::kObjectPath,
            agent::dbus::kInterface, "Check"};
  }
};

}  // namespace

TEST_CASE("a thousand Check calls by nobody run one check and the pending staged event stays in the outbox",
          "[dbus][check-flood]") {
  FloodRig rig;
  rig.outbox->report("staged", {{"version", "2.0"}});
  auto flushed = rig.outbox->flush();
  REQUIRE(flushed);
  REQUIRE(flushed->pending == 1);  // the sink is unreachable

  auto address = rig.bus->address();
  int code = test::run_as_nobody([&] {
    auto c = agent::dbus::Client::connect(address);
    if (!c) return 10;
    for (int i = 0; i < 1000; ++i) {
      auto r = (*c)->check();
      if (!r) return 11;
      if ((*r)["available"] != "2.0") return 12;  // every caller still gets the answer
    }
    return 0;
  });
  REQUIRE(code == 0);

  CHECK(rig.checks() == 1);
  CHECK(rig.outbox->pending() == 2);
  CHECK(rig.outbox->dropped() == 0);
  // The staged event is still the first to go once the sink is back.
  rig.sink.on_post = [](const repository::FakeHttpClient::Post&) -> Result<repository::HttpResponse> {
    return repository::HttpResponse{202, ""};
  };
  rig.sink.posts.clear();
  REQUIRE(rig.outbox->flush(true));
  REQUIRE(!rig.sink.posts.empty());
  CHECK(nlohmann::json::parse(rig.sink.posts[0].body)["type"] == "dev.ballast.staged");
}

TEST_CASE("root and the admin group always check anew; nobody checks anew only once the last check is a minute old",
          "[dbus][check-flood]") {
  FloodRig rig("nogroup");
  auto as_root = run_process(rig.busctl_check());
  REQUIRE(as_root);
  REQUIRE(as_root->exit_code == 0);
  REQUIRE(run_process(rig.busctl_check()));
  CHECK(rig.checks() == 2);

  // An admin-group member (nobody with nogroup as a supplementary group) is not limited either.
  for (int i = 0; i < 2; ++i) {
    auto member = run_process(test::as_nobody(rig.busctl_check(), true));
    REQUIRE(member);
    INFO(member->err);
    CHECK(member->exit_code == 0);
  }
  CHECK(rig.checks() == 4);

  // Outside the group: the last check's result, until the interval has passed.
  auto outsider = [&] {
    auto argv = rig.busctl_check();
    argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=12345", "--clear-groups"});
    auto r = run_process(argv);
    REQUIRE(r);
    INFO(r->err);
    CHECK(r->exit_code == 0);
    CHECK(r->out.find("2.0") != std::string::npos);
  };
  outsider();
  CHECK(rig.checks() == 4);
  rig.clock.advance(agent::dbus::kUnprivilegedCheckInterval - 1s);
  outsider();
  CHECK(rig.checks() == 4);
  rig.clock.advance(1s);
  outsider();
  CHECK(rig.checks() == 5);
  outsider();
  CHECK(rig.checks() == 5);
}
