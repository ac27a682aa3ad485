// systemd-analyze compare-versions is the reference for the UAPI version order: Version's order
// and compare_uapi_versions must agree with it on every pair.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/process.hpp"
#include "common/version.hpp"

using namespace ballast;

namespace {

using Pair = std::pair<std::string, std::string>;

// Asks systemd-analyze about every pair: one xargs runs `systemd-analyze compare-versions A B` per
// pair, a few at a time, and each output line ("A < B", "A == B", "A > B") names its pair.
std::map<Pair, int> systemd_order(const std::vector<Pair>& pairs) {
  std::string input;
  for (const auto& [a, b] : pairs) input += a + '\0' + b + '\0';
  SpawnOptions o;
  o.stdin_data = input;
  auto r = run_process({"xargs", "-0", "-n", "2", "-P", "4", "systemd-analyze", "compare-versions"}, o);
  REQUIRE(r);
  INFO(r->err);
  REQUIRE((r->exit_code == 0 || r->exit_code == 123));  // 123: some pair was not equal (exit 11 or 12)
  std::map<Pair, int> out;
  size_t pos = 0;
  while (pos < r->out.size()) {
    size_t nl = r->out.find('\n', pos);
    std::string line = r->out.substr(pos, nl - pos);
    pos = nl == std::string::npos ? r->out.size() : nl + 1;
    // Split on the operator, which no version contains; the empty string prints as ''.
    auto unquote = [](std::string v) { return v == "''" ? std::string() : v; };
    for (auto [op, sign] : {std::pair{" == ", 0}, std::pair{" < ", -1}, std::pair{" > ", 1}}) {
      size_t at = line.find(op);
      if (at == std::string::npos) continue;
      out[{unquote(line.substr(0, at)), unquote(line.substr(at + std::string(op).size()))}] = sign;
      break;
    }
  }
  return out;
}

int sign(int v) { return v < 0 ? -1 : v > 0 ? 1 : 0; }

// Versions built from the pieces the order treats specially, in every position: numbers with
// and without leading zeros, letters of both cases, and the separators ~ ^ . - _.
std::string random_version(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"0", "1", "2", "9", "10", "01", "007", "123", "a", "b", "Z", "rc",
                                                  "p", "~", "^", ".", "-", "_", "~rc", "^p", ".0", "-1"};
  static const std::string alnum = "0123456789abcXYZ";
  std::string v(1, alnum[rng() % alnum.size()]);
  for (size_t n = rng() % 6; n > 0; --n) v += pieces[rng() % pieces.size()];
  return v.substr(0, 64);
}

// A second version close to the first, so the pair differs in one piece rather than at once.
std::string mutate(const std::string& v, std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"0", "1", "00", "a", "A", "~", "^", ".", "-", "_", "~1", "^1", ".1"};
  std::string out = v;
  size_t at = 1 + rng() % out.size();
  switch (rng() % 3) {
    case 0: out.insert(at, pieces[rng() % pieces.size()]); break;
    case 1: out.erase(at, 1 + rng() % 2); break;
    default: out = out.substr(0, at) + pieces[rng() % pieces.size()] + out.substr(std::min(out.size(), at + 1)); break;
  }
  return out.empty() ? v : out.substr(0, 64);
}

}  // namespace

TEST_CASE("systemd-analyze compare-versions agrees with ballast on tricky versions and the specification's examples",
          "[boot][versions]") {
  const std::vector<std::string> versions = {
      "1.9", "1.10", "1.10.0", "1.1", "1.01", "1~rc1", "1~rc2", "1", "1^post", "1^post1", "1.0^p", "1a", "1A",
      "1.a", "2024.01.02", "2024.1.2", "2024.01.10", "5.10.0-23-amd64", "5.10.0-9-amd64", "1-1", "1_1", "1..1",
      "1.", "", "~", "a", "abc", "abcd", "1^", "1~", "0001", "1.0~rc1^p", "10", "2.0", "1.0~rc1", "1.0"};
  std::vector<Pair> pairs;
  // Each unordered pair once: compare_uapi_versions(b, a) == -compare_uapi_versions(a, b) is a unit test.
  for (size_t i = 0; i < versions.size(); ++i)
    for (size_t j = i; j < versions.size(); ++j) pairs.emplace_back(versions[i], versions[j]);
  // The examples of the UAPI Version Format Specification and of the Boot Loader Specification.
  for (auto [a, b] : std::vector<Pair>{{"11", "11"}, {"systemd-123", "systemd-124"}, {"bar-123", "foo-123"},
                                       {"123a", "123"}, {"123.a", "123"}, {"123.a", "123.b"}, {"123a", "123.a"},
                                       {"11α", "11β"}, {"A", "a"}, {"", "0"}, {"0.", "0"}, {"0.0", "0"}, {"0", "~"},
                                       {"", "~"}, {"1_", "1"}, {"_1", "1"}, {"1_", "1.2"}, {"1_2_3", "1_3"},
                                       {"1.0~rc1", "1.0"}, {"1.0", "1.0^p1"}, {"1.0^p1", "1.0.1"}, {"fc36", "fc37"},
                                       {"5.18.5-200.fc36", "5.18.10-200.fc36"}, {"2022.05.30", "2022.5.30"}})
    pairs.emplace_back(a, b);
  auto reference = systemd_order(pairs);
  for (const auto& [a, b] : pairs) {
    INFO("'" << a << "' vs '" << b << "'");
    REQUIRE(reference.count({a, b}));
    CHECK(sign(compare_uapi_versions(a, b)) == reference[{a, b}]);
  }
}

TEST_CASE("Version's order equals systemd-analyze compare-versions on 600 generated pairs", "[boot][versions]") {
  std::mt19937 rng(20261204);
  std::vector<Pair> pairs;
  while (pairs.size() < 600) {
    std::string a = random_version(rng);
    std::string b = rng() % 3 == 0 ? random_version(rng) : mutate(a, rng);
    if (!Version::parse(a) || !Version::parse(b)) continue;  // a mutation may start with a separator
    pairs.emplace_back(a, b);
  }
  auto reference = systemd_order(pairs);
  int same = 0;
  for (const auto& [a, b] : pairs) {
    INFO("'" << a << "' vs '" << b << "'");
    REQUIRE(reference.count({a, b}));
    auto order = *Version::parse(a) <=> *Version::parse(b);
    int ours = order < 0 ? -1 : order > 0 ? 1 : 0;
    CHECK(ours == reference[{a, b}]);
    same += ours == reference[{a, b}];
  }
  CHECK(same == 600);
}
