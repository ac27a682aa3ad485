// The D-Bus API on a private dbus-daemon that applies the real policy from units/: the real Server
// in front of a fake AgentApi, reached with the real busctl and with the Client proxy.
#include <algorithm>
#include <catch2/catch.hpp>

#include <systemd/sd-bus.h>

#include "agent/dbus/client.hpp"
#include "agent/dbus/names.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/dbus/bus_fixture.hpp"
#include "tests/unit/agent/report/journal_capture.hpp"

using namespace ballast;
using ballast::test::FakeAgent;
using ballast::test::PrivateBus;
using ballast::test::ServerThread;

namespace {

struct Served {
  std::unique_ptr<PrivateBus> bus = PrivateBus::start();
  FakeAgent agent;
  std::unique_ptr<ServerThread> server;
  explicit Served(std::string admin_group = "") {
    agent::dbus::ServerOptions o;
    o.bus_address = bus->address();
    o.admin_group = std::move(admin_group);
    server = ServerThread::start(agent, o);
    agent.observer = &server->server();
  }
  ~Served() { server.reset(); }

  std::vector<std::string> busctl(std::vector<std::string> args) const {
    std::vector<std::string> argv{"busctl", "--address=" + bus->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::vector<std::string> call(const std::string& method, std::vector<std::string> args = {}) const {
    std::vector<std::string> a{"call", agent::dbus::kBusName, agent::dbus::kObjectPath, agent::dbus::kInterface, method};
    a.insert(a.end(), args.begin(), args.end());
    return busctl(a);
  }
  std::unique_ptr<agent::dbus::Client> client() const {
    auto c = agent::dbus::Client::connect(bus->address());
    REQUIRE(c);
    return std::move(*c);
  }
};

std::string run_ok(const std::vector<std::string>& argv) {
  auto r = run_process(argv);
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->exit_code == 0);
  return r->out;
}

}  // namespace

TEST_CASE("busctl introspect shows the agent's interface, its properties, methods and signal", "[dbus]") {
  Served s;
  auto out = run_ok(s.busctl({"introspect", agent::dbus::kBusName, agent::dbus::kObjectPath}));
  CHECK(out.find("dev.ballast.Agent1") != std::string::npos);
  for (const char* member : {".State", ".BootedVersion", ".StagedVersion", ".TargetVersion", ".Pinned", ".LastError",
                             ".RebootHold", ".LastCheck", ".Check", ".Update", ".Rollback", ".Pin", ".Unpin", ".Bless", ".History",
                             ".StateChanged"}) {
    INFO(member);
    CHECK(out.find(member) != std::string::npos);
  }
  CHECK(out.find("(dttds)") != std::string::npos);
  CHECK(out.find("a{sv}") != std::string::npos);
}

TEST_CASE("every property reads the same through busctl and through the client", "[dbus]") {
  Served s;
  REQUIRE(s.client()->pin("1.5"));
  auto get = [&](const char* p) {
    return run_ok(s.busctl({"get-property", agent::dbus::kBusName, agent::dbus::kObjectPath, agent::dbus::kInterface, p}));
  };
  CHECK(get("State") == "s \"idle\"\n");
  CHECK(get("BootedVersion") == "s \"1.0\"\n");
  CHECK(get("StagedVersion") == "s \"\"\n");
  CHECK(get("RebootHold") == "s \"\"\n");  // nothing holds a reboot
  CHECK(get("Pinned") == "s \"1.5\"\n");
  CHECK(get("LastCheck") == "x 1700000000\n");
  CHECK(get("Progress") == "(dttds) 0 0 0 0 \"\"\n");

  auto st = s.client()->status();
  REQUIRE(st);
  CHECK(st->state == "idle");
  CHECK(st->booted == "1.0");
  CHECK(st->pinned == "1.5");
  CHECK(st->last_check == 1700000000);
  CHECK(st->staged.empty());
}

TEST_CASE("every method reaches the AgentApi through busctl with its arguments", "[dbus]") {
  Served s;
  auto check = run_ok(s.call("Check"));
  CHECK(check.find("\\\"available\\\":\\\"2.0\\\"") != std::string::npos);
  run_ok(s.call("Update", {"a{sv}", "1", "download-only", "b", "true"}));
  run_ok(s.call("Rollback", {"b", "true"}));
  run_ok(s.call("Pin", {"s", "1.7"}));
  run_ok(s.call("Unpin"));
  run_ok(s.call("Bless"));
  auto history = run_ok(s.call("History"));
  CHECK(history.find("committed") != std::string::npos);
  CHECK(s.agent.calls() == std::vector<std::string>{"check", "update download-only=1 apply=0", "rollback reboot=1",
                                                    "pin 1.7", "unpin", "bless", "history"});
  CHECK(s.agent.snapshot().state == "waiting-to-reboot");
}

TEST_CASE("every method reaches the AgentApi through the client with its arguments", "[dbus]") {
  Served s;
  auto c = s.client();
  auto check = c->check();
  REQUIRE(check);
  CHECK((*check)["available"] == "2.0");
  agent::UpdateOptions o;
  o.apply = true;
  REQUIRE(c->update(o));
  REQUIRE(c->rollback(false));
  REQUIRE(c->pin("1.7"));
  REQUIRE(c->unpin());
  REQUIRE(c->bless());
  auto history = c->history();
  REQUIRE(history);
  REQUIRE(history->size() == 1);
  CHECK((*history)[0]["result"] == "committed");
  CHECK(s.agent.calls() == std::vector<std::string>{"check", "update download-only=0 apply=1", "rollback reboot=0",
                                                    "pin 1.7", "unpin", "bless", "history"});
  CHECK(s.agent.snapshot().state == "rebooting");
}

TEST_CASE("an AgentApi error arrives as a D-Bus error named after its code, with its message", "[dbus]") {
  Served s;
  sd_bus* bus = nullptr;
  REQUIRE(sd_bus_new(&bus) >= 0);
  REQUIRE(sd_bus_set_address(bus, s.bus->address().c_str()) >= 0);
  REQUIRE(sd_bus_set_bus_client(bus, 1) >= 0);
  REQUIRE(sd_bus_start(bus) >= 0);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r = sd_bus_call_method(bus, agent::dbus::kBusName, agent::dbus::kObjectPath, agent::dbus::kInterface, "Pin",
                             &error, nullptr, "s", "9.9");
  CHECK(r < 0);
  CHECK(std::string(error.name) == "dev.ballast.Error.agent.unknown_version");
  CHECK(std::string(error.message) == "no release 9.9 on channel stable");
  sd_bus_error_free(&error);
  sd_bus_flush_close_unref(bus);

  auto pinned = s.client()->pin("9.9");
  REQUIRE(!pinned);
  CHECK(pinned.error().code == "agent.unknown-version");
  CHECK(pinned.error().message == "no release 9.9 on channel stable");

  auto bad = run_process(s.call("Update", {"a{sv}", "1", "reboot-later", "b", "true"}));
  REQUIRE(bad);
  CHECK(bad->exit_code != 0);
  CHECK(bad->err.find("unknown option 'reboot-later'") != std::string::npos);
}

TEST_CASE("StateChanged and Progress changes arrive on every transition of an update", "[dbus]") {
  Served s;
  auto c = s.client();
  std::vector<std::string> transitions;
  std::vector<uint64_t> progress_bytes;
  std::string progress_message;
  REQUIRE(c->subscribe([&](const agent::dbus::AgentEvent& e) {
    if (e.kind == agent::dbus::AgentEvent::Kind::transition) {
      transitions.push_back(e.from + ">" + e.to);
    } else {
      progress_bytes.push_back(e.progress.bytes);
      progress_message = e.progress.message;
      if (e.progress.bytes) CHECK(e.progress.total_bytes == (4u << 20));
    }
  }));
  agent::UpdateOptions o;
  o.download_only = true;
  REQUIRE(c->update(o));
  REQUIRE(c->wait_until([&] { return transitions.size() == 4; }));
  CHECK(transitions ==
        std::vector<std::string>{"idle>checking", "checking>staging", "staging>staged", "staged>waiting-to-reboot"});
  // Each transition re-announces Progress too; the two staging changes are among them in order.
  auto first = std::find(progress_bytes.begin(), progress_bytes.end(), uint64_t{1} << 20);
  REQUIRE(first != progress_bytes.end());
  CHECK(std::find(first, progress_bytes.end(), uint64_t{3} << 20) != progress_bytes.end());
  CHECK(progress_message == "fetching 2.0");
  auto st = c->status();
  REQUIRE(st);
  CHECK(st->staged == "2.0");
  CHECK(st->progress.bytes == (3u << 20));
}

TEST_CASE("a progress event that arrives after a newer one never sends Progress backwards", "[dbus]") {
  Served s;
  s.agent.late_progress_event = true;
  auto c = s.client();
  std::vector<std::string> transitions;
  std::vector<uint64_t> progress_bytes;
  REQUIRE(c->subscribe([&](const agent::dbus::AgentEvent& e) {
    if (e.kind == agent::dbus::AgentEvent::Kind::transition) transitions.push_back(e.to);
    else if (!transitions.empty() && transitions.back() == "staging") progress_bytes.push_back(e.progress.bytes);
  }));
  agent::UpdateOptions o;
  o.download_only = true;
  REQUIRE(c->update(o));
  REQUIRE(c->wait_until([&] { return transitions.size() == 4; }));
  // The late event (1 MiB, after 3 MiB was reported) re-announces the status as it is: 3 MiB.
  REQUIRE(!progress_bytes.empty());
  CHECK(progress_bytes.back() == (3u << 20));
  CHECK(std::is_sorted(progress_bytes.begin(), progress_bytes.end()));
}

TEST_CASE("transitions dispatched after the event loop closed the bus are dropped without a warning", "[dbus]") {
  Served s;
  s.server->stop_loop();
  testing::JournalCapture journal;
  REQUIRE(journal.bound());
  s.server->server().on_transition("rebooting", "verifying");
  s.server->server().on_progress(agent::Progress{});
  s.server->server().on_status_changed();
  for (const auto& r : journal.take()) {
    INFO(testing::field(r, "MESSAGE"));
    CHECK(testing::field(r, "PRIORITY") != "4");
  }
}

TEST_CASE("a mutating call from a non-root user is refused while a read works", "[dbus]") {
  Served s;
  auto address = s.bus->address();
  // The client in a forked child that dropped to nobody.
  int code = test::run_as_nobody([&] {
    auto c = agent::dbus::Client::connect(address);
    if (!c) return 10;
    auto st = (*c)->status();
    if (!st || st->state != "idle") return 11;
    auto pinned = (*c)->pin("1.7");
    if (pinned) return 12;
    if (pinned.error().code != "agent.access-denied") return 13;
    if (!(*c)->history()) return 14;
    if ((*c)->rollback(false)) return 15;
    return 0;
  });
  CHECK(code == 0);

  // busctl as nobody: the same.
  auto read = run_process(test::as_nobody(
      s.busctl({"get-property", agent::dbus::kBusName, agent::dbus::kObjectPath, agent::dbus::kInterface, "State"})));
  REQUIRE(read);
  INFO(read->err);
  CHECK(read->exit_code == 0);
  CHECK(read->out == "s \"idle\"\n");
  auto pin = run_process(test::as_nobody(s.call("Pin", {"s", "1.7"})));
  REQUIRE(pin);
  CHECK(pin->exit_code != 0);
  CHECK(pin->err.find("only root may call Pin") != std::string::npos);

  // Nothing mutating reached the agent; the reads did.
  CHECK(s.agent.calls() == std::vector<std::string>{"history"});
  CHECK(s.agent.snapshot().pinned.empty());
}

TEST_CASE("members of the configured admin group may call mutating methods", "[dbus]") {
  Served s("nogroup");
  auto with_group = run_process(test::as_nobody(s.call("Pin", {"s", "1.7"}), true));
  REQUIRE(with_group);
  INFO(with_group->err);
  CHECK(with_group->exit_code == 0);
  CHECK(s.agent.snapshot().pinned == "1.7");

  // nobody's own primary group is nogroup: drop it too for the caller outside the group.
  auto argv = s.call("Unpin");
  argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=12345", "--clear-groups"});
  auto without = run_process(argv);
  REQUIRE(without);
  CHECK(without->exit_code != 0);
  CHECK(without->err.find("only root or members of group nogroup may call Unpin") != std::string::npos);
  CHECK(s.agent.snapshot().pinned == "1.7");
}

TEST_CASE("the policy lets only root own the agent's name", "[dbus]") {
  auto bus = PrivateBus::start();
  std::vector<std::string> request{"busctl", "--address=" + bus->address(), "call", "org.freedesktop.DBus",
                                   "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su",
                                   agent::dbus::kBusName, "0"};
  auto r = run_process(test::as_nobody(request));
  REQUIRE(r);
  INFO(r->err);
  CHECK(r->exit_code != 0);
  CHECK(r->err.find("Access denied") != std::string::npos);
  // The same request from root is granted (1: primary owner), so the refusal above is the policy's.
  auto root = run_process(request);
  REQUIRE(root);
  INFO(root->err);
  CHECK(root->exit_code == 0);
  CHECK(root->out == "u 1\n");
}

TEST_CASE("the client tells a bus without the agent from a failing agent", "[dbus]") {
  auto bus = PrivateBus::start();
  auto c = agent::dbus::Client::connect(bus->address());
  REQUIRE(c);
  auto st = (*c)->status();
  REQUIRE(!st);
  CHECK(st.error().code == "dbus.no-daemon");
  CHECK(agent::dbus::is_not_running(st.error()));

  auto none = agent::dbus::Client::connect("unix:path=/nonexistent/ballast-bus");
  Result<agent::AgentStatus> s2 = none ? (*none)->status() : tl::unexpected<Error>(none.error());
  REQUIRE(!s2);
  CHECK(agent::dbus::is_not_running(s2.error()));
}
