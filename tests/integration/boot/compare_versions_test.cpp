// systemd-analyze compare-versions is the reference for the UAPI version order.
#include <catch2/catch.hpp>

#include "boot/version_compare.hpp"
#include "common/process.hpp"

using namespace ballast;

TEST_CASE("systemd-analyze compare-versions agrees with ballast on tricky versions", "[boot][versions]") {
  const std::vector<std::string> versions = {
      "1.9", "1.10", "1.10.0", "1.1", "1.01", "1~rc1", "1~rc2", "1", "1^post", "1^post1", "1.0^p", "1a", "1A",
      "1.a", "2024.01.02", "2024.1.2", "2024.01.10", "5.10.0-23-amd64", "5.10.0-9-amd64", "1-1", "1_1", "1..1",
      "1.", "", "~", "a", "abc", "abcd", "1^", "1~", "0001", "1.0~rc1^p", "10", "2.0"};
  int checked = 0;
  for (const auto& a : versions) {
    for (const auto& b : versions) {
      auto r = run_process({"systemd-analyze", "compare-versions", a, b});
      REQUIRE(r);
      int expected = r->exit_code == 0 ? 0 : r->exit_code == 11 ? 1 : r->exit_code == 12 ? -1 : 99;
      REQUIRE(expected != 99);
      int ours = boot::compare_versions(a, b);
      ours = ours < 0 ? -1 : ours > 0 ? 1 : 0;
      INFO("'" << a << "' vs '" << b << "': systemd-analyze says " << r->out);
      CHECK(ours == expected);
      ++checked;
    }
  }
  CHECK(checked == static_cast<int>(versions.size() * versions.size()));
}
