// The built `ballast` executable, run as a test drives it from outside.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/process.hpp"

namespace ballast::testing {

inline const std::string kBallastExecutable = BALLAST_BUILD_ROOT "/agent/ballast";

// Runs `ballast ARGS...`; the test fails if it cannot be started. Its stderr is attached to
// whatever the caller checks next.
inline ProcessResult run_ballast(std::vector<std::string> args) {
  args.insert(args.begin(), kBallastExecutable);
  auto r = run_process(args);
  REQUIRE(r);
  UNSCOPED_INFO(args[1] + " " + (args.size() > 2 ? args[2] : "") + ": " + r->err);
  return *r;
}

// run_ballast, and the test fails unless it exits 0.
inline ProcessResult run_ballast_ok(std::vector<std::string> args) {
  auto r = run_ballast(std::move(args));
  REQUIRE(r.success());
  return r;
}

// Runs another tool a test sets up with (btrfs, cp, …); the test fails unless it exits 0.
inline void run_tool_ok(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
}

}  // namespace ballast::testing
