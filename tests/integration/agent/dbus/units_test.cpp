// units/ checked by systemd's own tools: systemd-analyze verify on the services, systemd-tmpfiles
// on the tmpfiles.d file in a scratch root. (The D-Bus policy is loaded by the private
// dbus-daemon of server_test.cpp, which refuses a malformed one.)
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "common/file.hpp"
#include "common/process.hpp"

using namespace ballast;

namespace {

const std::string kUnits = BALLAST_SOURCE_ROOT "/units";
const std::string kBallast = BALLAST_BUILD_ROOT "/agent/ballast";

// A copy of a unit whose ExecStart= names the built binary: verify checks that every command
// exists, and /usr/bin/ballast is not installed on the build machine. Nothing else changes.
std::string copy_with_built_binary(const std::string& dir, const std::string& name) {
  auto text = read_file(kUnits + "/" + name);
  REQUIRE(text);
  std::string s = *text;
  const std::string installed = "/usr/bin/ballast";
  size_t replaced = 0;
  for (auto pos = s.find(installed); pos != std::string::npos; pos = s.find(installed, pos + kBallast.size())) {
    s.replace(pos, installed.size(), kBallast);
    ++replaced;
  }
  CHECK(replaced == 1);
  REQUIRE(write_file_atomic(dir + "/" + name, s));
  return dir + "/" + name;
}

}  // namespace

TEST_CASE("systemd-analyze verify finds nothing to say about the units", "[units]") {
  auto dir = make_temp_dir("ballast-units");
  REQUIRE(dir);
  auto service = copy_with_built_binary(*dir, "ballast.service");
  auto health = copy_with_built_binary(*dir, "ballast-health.service");
  auto r = run_process({"systemd-analyze", "verify", service, health});
  REQUIRE(r);
  INFO(r->err);
  CHECK(r->exit_code == 0);
  // verify exits 0 on unknown keys and bad values too; only silence is clean.
  CHECK(r->err.empty());
  CHECK(r->out.empty());
  (void)remove_tree(*dir);
}

TEST_CASE("systemd-analyze verify in this test notices a broken unit", "[units]") {
  // The clean verdict above means something only if verify speaks up about mistakes here.
  auto dir = make_temp_dir("ballast-units");
  REQUIRE(dir);
  auto service = copy_with_built_binary(*dir, "ballast.service");
  auto text = read_file(service);
  REQUIRE(text);
  REQUIRE(write_file_atomic(service, *text + "\n[Service]\nProtectSystm=strict\n"));
  auto r = run_process({"systemd-analyze", "verify", service});
  REQUIRE(r);
  CHECK(r->err.find("Unknown key") != std::string::npos);
  (void)remove_tree(*dir);
}

TEST_CASE("the health unit is required by boot-complete.target and ordered before it", "[units]") {
  auto text = read_file(kUnits + "/ballast-health.service");
  REQUIRE(text);
  CHECK(text->find("\nBefore=boot-complete.target\n") != std::string::npos);
  CHECK(text->find("\nRequiredBy=boot-complete.target\n") != std::string::npos);
  CHECK(text->find("\nType=oneshot\n") != std::string::npos);
  auto service = read_file(kUnits + "/ballast.service");
  REQUIRE(service);
  CHECK(service->find("\nType=notify\n") != std::string::npos);
  CHECK(service->find("\nProtectSystem=strict\n") != std::string::npos);
  CHECK(service->find("\nBusName=dev.ballast.Agent1\n") != std::string::npos);
}

TEST_CASE("systemd-tmpfiles creates the agent's directories with their modes", "[units]") {
  auto root = make_temp_dir("ballast-tmpfiles");
  REQUIRE(root);
  auto r = run_process({"systemd-tmpfiles", "--create", "--root=" + *root, kUnits + "/tmpfiles.conf"});
  REQUIRE(r);
  INFO(r->err);
  CHECK(r->exit_code == 0);
  CHECK(r->err.empty());
  struct stat st {};
  REQUIRE(::stat((*root + "/var/lib/ballast").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(::stat((*root + "/run/ballast/config.d").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(::stat((*root + "/etc/ballast/health.d/required").c_str(), &st) == 0);
  CHECK(::stat((*root + "/etc/ballast/health.d/wanted").c_str(), &st) == 0);
  (void)remove_tree(*root);
}
