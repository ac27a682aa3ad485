#include <algorithm>
#include <catch2/catch.hpp>

#include "agent/host/retention.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::host;

namespace {
using namespace ballast::version_literals;

DeploymentStatus version(const std::string& v, boot::EntryState state) {
  DeploymentStatus d;
  d.version = make_version(v);
  d.slot = d.deployment = true;
  boot::BootEntry e;
  e.version = make_version(v);
  e.state = state;
  d.entry = e;
  return d;
}

// Six versions, newest first: 6 staged on trial, 5 booted, 4 bad, 3..1 good.
HostStatus six_versions() {
  HostStatus s;
  s.all = {version("6", boot::EntryState::indeterminate), version("5", boot::EntryState::good),
           version("4", boot::EntryState::bad),           version("3", boot::EntryState::good),
           version("2", boot::EntryState::good),          version("1", boot::EntryState::good)};
  s.staged = s.all[0];
  s.booted = s.all[1];
  s.rollback = s.all[3];
  return s;
}

}  // namespace

TEST_CASE("retention keeps the booted, staged and rollback versions and removes the rest") {
  auto plan = plan_retention(six_versions(), 3, {});
  CHECK(plan.keep == std::vector<Version>{"6"_v, "5"_v, "3"_v});
  CHECK(plan.remove == std::vector<Version>{"4"_v, "2"_v, "1"_v});
}

TEST_CASE("retention fills spare room with good versions before bad ones") {
  auto plan = plan_retention(six_versions(), 4, {});
  CHECK(plan.keep == std::vector<Version>{"6"_v, "5"_v, "3"_v, "2"_v});
}

TEST_CASE("retention never removes a slot a planned delta needs as its parent, nor the booted one") {
  auto plan = plan_retention(six_versions(), 3, {"1"_v});
  CHECK(std::find(plan.keep.begin(), plan.keep.end(), "1"_v) != plan.keep.end());
  CHECK(std::find(plan.keep.begin(), plan.keep.end(), "5"_v) != plan.keep.end());
  auto tight = plan_retention(six_versions(), 1, {});
  CHECK(std::find(tight.keep.begin(), tight.keep.end(), "5"_v) != tight.keep.end());
}
