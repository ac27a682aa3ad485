#include <catch2/catch.hpp>

#include "common/process.hpp"

using namespace ballast;
using namespace std::chrono_literals;

TEST_CASE("a process's output and exit status are captured") {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  REQUIRE(r);
  CHECK(r->out == "out\n");
  CHECK(r->err == "err\n");
  CHECK(r->exit_code == 3);
  CHECK_FALSE(r->success());
}

TEST_CASE("arguments reach the child verbatim, with no shell in between") {
  auto r = run_process({"printf", "%s|", "a b", "$(x)", "*;"});
  REQUIRE(r);
  CHECK(r->out == "a b|$(x)|*;|");
}

TEST_CASE("stdin data is fed to the child, larger than a pipe buffer") {
  std::string big(1 << 20, 'z');
  auto r = run_process({"wc", "-c"}, SpawnOptions{.stdin_data = big});
  REQUIRE(r);
  CHECK(std::stoul(r->out) == big.size());
}

TEST_CASE("a process that outlives its timeout is killed and reported") {
  auto r = run_process({"sleep", "10"}, SpawnOptions{.timeout = 200ms});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "process.timeout");
}

TEST_CASE("run_checked turns a failure into an error quoting stderr") {
  auto r = run_checked({"sh", "-c", "echo nope >&2; exit 1"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "process.failed");
  CHECK_THAT(r.error().message, Catch::Contains("nope"));
}

TEST_CASE("a missing program is an error, not a crash") {
  auto r = run_process({"/nonexistent/ballast-no-such-program"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "process.spawn");
}

TEST_CASE("an extra environment variable replaces an inherited one of the same name") {
  ::setenv("BALLAST_PROCESS_TEST", "inherited", 1);
  auto r = run_process({"sh", "-c", "echo \"$BALLAST_PROCESS_TEST\"; env | grep -c '^BALLAST_PROCESS_TEST='"},
                       SpawnOptions{.extra_env = {"BALLAST_PROCESS_TEST=extra"}});
  ::unsetenv("BALLAST_PROCESS_TEST");
  REQUIRE(r);
  CHECK(r->out == "extra\n1\n");
}
