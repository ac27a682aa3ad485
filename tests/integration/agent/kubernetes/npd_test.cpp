// `ballast health --npd` on a sandbox host whose real daemon (`ballast daemon --once`) could not
// reach its repository: no problem while the failure is younger than
// health.repository_unreachable_after, the condition once it is older, none after a success.
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/reboot/simulated_host.hpp"

using namespace ballast;
using namespace std::chrono_literals;
using ballast::testing::SimulatedHost;
using nlohmann::json;

namespace {

ProcessResult run(const std::vector<std::string>& argv) {
  auto r = run_process(argv);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("the NPD plugin reports a repository the daemon has not reached for longer than the threshold, until it reaches it") {
  SimulatedHost s;
  REQUIRE(make_dirs(s.base + "/npd-health"));
  auto npd = [&] {
    return run({testing::kBallast, "--state-dir", s.h.state, "--config-dir", s.config, "health", "--npd", "--no-failed-units",
                "--dir", s.base + "/npd-health"});
  };
  auto daemon_once = [&] {
    auto argv = s.host_args();
    for (auto a : {"daemon", "--once", "--no-dbus", "--run-dir"}) argv.push_back(a);
    argv.push_back(s.run);
    return run(argv);
  };
  // Nothing listens on port 9 of the loopback: every connection is refused.
  const std::string away = "[repository]\nurl = \"http://127.0.0.1:9/\"\nretries = 0\n[update]\nchannel = \"none\"\n";
  s.drop_in(away + "[health]\nrepository_unreachable_after = \"1h\"\n");
  auto failed = daemon_once();
  INFO(failed.err);
  auto record = json::parse(*read_file(s.h.state + "/repository.json"));
  REQUIRE(record["failingSince"].is_string());
  CHECK(record["lastSuccess"].is_null());
  const std::string code = record["lastError"];
  CHECK_THAT(code, Catch::StartsWith("http.") || Catch::StartsWith("tuf."));

  auto young = npd();
  CHECK(young.exit_code == 0);
  CHECK(young.out == "ballast: no update problem\n");  // the failed check is no failed update

  // Older than a one-second threshold (the record has whole seconds).
  std::this_thread::sleep_for(1100ms);
  s.drop_in(away + "[health]\nrepository_unreachable_after = \"1s\"\n");
  auto old = npd();
  CHECK(old.exit_code == 1);
  CHECK(old.out == "BallastRepositoryUnreachable: repository unreachable since " + record["failingSince"].get<std::string>() +
                       " (0 min): " + code + "\n");

  // Reached again (no release on channel "none": a check that succeeds and changes nothing).
  s.drop_in("[update]\nchannel = \"none\"\n[health]\nrepository_unreachable_after = \"1s\"\n");
  auto reached = daemon_once();
  INFO(reached.err);
  CHECK(reached.exit_code == 0);
  auto after = json::parse(*read_file(s.h.state + "/repository.json"));
  CHECK(after["failingSince"].is_null());
  CHECK(after["lastSuccess"].is_string());
  CHECK(npd().exit_code == 0);
}
