#include "agent/reboot/rebooter.hpp"

#include <catch2/catch.hpp>

#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;

namespace {

struct TempDir {
  std::string path;
  TempDir() : path(make_temp_dir("ballast-rebooter").value()) {}
  ~TempDir() { (void)remove_tree(path); }
};

RebooterOptions options(const std::string& run_dir, std::string bus = "", std::vector<std::string> fallback = {"false"}) {
  RebooterOptions o;
  o.run_dir = run_dir;
  o.bus_address = std::move(bus);
  o.fallback_argv = std::move(fallback);
  return o;
}

}  // namespace

TEST_CASE("announce writes /run/reboot-required and its package list for kured, and withdraw removes both") {
  TempDir dir;
  SystemRebooter r(options(dir.path));
  REQUIRE(r.announce("2026.11.2"));
  auto flag = read_file(dir.path + "/reboot-required");
  auto pkgs = read_file(dir.path + "/reboot-required.pkgs");
  REQUIRE(flag);
  REQUIRE(pkgs);
  CHECK(*flag == "*** System restart required ***\n");
  CHECK(*pkgs == "ballast=2026.11.2\n");
  REQUIRE(r.announce("2026.11.3"));
  CHECK(read_file(dir.path + "/reboot-required.pkgs").value() == "ballast=2026.11.3\n");
  // Written atomically: nothing but the two files is left in the directory.
  CHECK(list_dir(dir.path).value() == std::vector<std::string>{"reboot-required", "reboot-required.pkgs"});
  REQUIRE(r.withdraw());
  CHECK(list_dir(dir.path).value().empty());
  REQUIRE(r.withdraw());
}

TEST_CASE("announce refuses a version that would break the file format and writes nothing") {
  TempDir dir;
  SystemRebooter r(options(dir.path));
  for (std::string v : {"", "1.0\nsomething-else"}) {
    auto st = r.announce(v);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "reboot.bad-version");
  }
  CHECK(list_dir(dir.path).value().empty());
}

TEST_CASE("announce into a missing directory fails clearly") {
  SystemRebooter r(options("/nonexistent/ballast-run"));
  CHECK_FALSE(r.announce("1.0"));
}

TEST_CASE("without logind on the bus the fallback command reboots, and when it fails too the error names both") {
  TempDir dir;
  std::string no_bus = "unix:path=" + dir.path + "/no-such-bus";
  SECTION("fallback succeeds") {
    SystemRebooter r(options(dir.path, no_bus, {"touch", dir.path + "/fallback-ran"}));
    REQUIRE(r.reboot());
    CHECK(path_exists(dir.path + "/fallback-ran"));
  }
  SECTION("both fail") {
    SystemRebooter r(options(dir.path, no_bus, {"false"}));
    auto st = r.reboot();
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "reboot.failed");
    CHECK(st.error().message.find("logind") != std::string::npos);
    CHECK(st.error().message.find("false") != std::string::npos);
  }
}
