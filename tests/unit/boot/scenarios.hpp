// The boot-counting scenarios, run against every BootControl that can "reboot": the fake, and
// the systemd-boot backend on a directory ESP driven by the boot simulator.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "boot/boot_control.hpp"
#include "tests/version_literal.hpp"

namespace ballast::boot::testing {
using namespace ballast::version_literals;

struct Rig {
  BootControl& control;
  std::function<Result<std::string>()> reboot;              // boots, returns what booted_version() says
  std::function<KernelSpec(const std::string&, int)> spec;  // a kernel spec for a version
};

inline std::vector<std::string> order_of(BootControl& c) {
  std::vector<std::string> out;
  auto all = c.entries();
  REQUIRE(all);
  for (const auto& e : *all) out.push_back(e.version.str());
  return out;
}

inline BootEntry entry_of(BootControl& c, const std::string& v) {
  auto all = c.entries();
  REQUIRE(all);
  for (const auto& e : *all)
    if (e.version.str() == v) return e;
  FAIL("no entry " << v);
  return {};
}

inline void install_good(Rig& r, const std::string& v) {
  REQUIRE(r.control.install(r.spec(v, 0)));
  REQUIRE(r.control.bless(make_version(v)));
}

inline void trial_then_bless(Rig& r) {
  install_good(r, "1");
  REQUIRE(r.control.install(r.spec("2", 3)));
  auto trial = entry_of(r.control, "2");
  CHECK(trial.state == EntryState::indeterminate);
  CHECK(trial.tries_left == 3);
  CHECK(order_of(r.control) == std::vector<std::string>{"2", "1"});

  CHECK(*r.reboot() == "2");
  trial = entry_of(r.control, "2");
  CHECK(trial.tries_left == 2);
  CHECK(trial.tries_done == 1);
  CHECK(*r.control.booted_version() == "2"_v);

  REQUIRE(r.control.bless(*r.control.booted_version()));
  auto blessed = entry_of(r.control, "2");
  CHECK(blessed.state == EntryState::good);
  CHECK(!blessed.has_counter);
  CHECK(*r.reboot() == "2");
  CHECK(!entry_of(r.control, "2").has_counter);  // a good entry is never counted down
}

inline void trial_exhausted_falls_back(Rig& r) {
  install_good(r, "1");
  install_good(r, "2");
  REQUIRE(r.control.install(r.spec("3", 2)));
  CHECK(*r.reboot() == "3");
  CHECK(*r.reboot() == "3");
  auto spent = entry_of(r.control, "3");
  CHECK(spent.state == EntryState::bad);
  CHECK(spent.tries_left == 0);
  CHECK(spent.tries_done == 2);
  // The exhausted entry sorts last and the newest good one boots.
  CHECK(order_of(r.control) == std::vector<std::string>{"2", "1", "3"});
  CHECK(*r.reboot() == "2");
  CHECK(*r.reboot() == "2");
  CHECK(entry_of(r.control, "3").tries_done == 2);
}

inline void mark_bad_falls_back(Rig& r) {
  install_good(r, "1");
  REQUIRE(r.control.install(r.spec("2", 3)));
  CHECK(*r.reboot() == "2");
  REQUIRE(r.control.mark_bad("2"_v));
  auto bad = entry_of(r.control, "2");
  CHECK(bad.state == EntryState::bad);
  CHECK(bad.tries_done == 1);  // mark-bad keeps the tries done
  CHECK(*r.reboot() == "1");
}

inline void operator_rollback(Rig& r) {
  install_good(r, "1");
  install_good(r, "2");
  CHECK(*r.reboot() == "2");
  REQUIRE(r.control.prefer("1"_v));
  CHECK(order_of(r.control).front() == "1");
  CHECK(entry_of(r.control, "2").state == EntryState::bad);
  CHECK(*r.reboot() == "1");
  CHECK(*r.reboot() == "1");
  auto refused = r.control.prefer("2"_v);
  REQUIRE(!refused);
  CHECK(refused.error().code == "boot.entry-bad");
  // Going forward again is explicit: bless the version rolled back from.
  REQUIRE(r.control.bless("2"_v));
  CHECK(*r.reboot() == "2");
}

inline void oneshot_boots_once(Rig& r) {
  install_good(r, "1");
  install_good(r, "2");
  REQUIRE(r.control.set_oneshot("1"_v));
  CHECK(*r.reboot() == "1");
  CHECK(*r.reboot() == "2");
}

inline void run_all_scenarios(const std::function<void(const std::function<void(Rig&)>&)>& with_rig) {
  SECTION("trial then bless") { with_rig(trial_then_bless); }
  SECTION("trial exhausted falls back to the newest good entry") { with_rig(trial_exhausted_falls_back); }
  SECTION("mark bad falls back") { with_rig(mark_bad_falls_back); }
  SECTION("operator rollback") { with_rig(operator_rollback); }
  SECTION("one-shot boots once") { with_rig(oneshot_boots_once); }
}

}  // namespace ballast::boot::testing
