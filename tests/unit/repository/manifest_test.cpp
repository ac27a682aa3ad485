#include <catch2/catch.hpp>
#include <algorithm>
#include <tuple>

#include "repository/manifest.hpp"
#include "tests/version_literal.hpp"

using namespace ballast::repository;
using ballast::Version;

namespace {
using namespace ballast::version_literals;

const std::string kSha1(64, 'a');
const std::string kSha2(64, 'b');

Manifest sample() {
  Manifest m;
  m.version = *Version::parse("2.0");
  Artifact full;
  full.chunks = {{kSha1, 10, 30}, {kSha2, 5, 7}};
  full.size = 15;
  full.usize = 37;
  full.history = 8u << 20;
  Artifact delta;
  delta.from = "1.0"_v;
  delta.parent_uuid = "0123abcd-0000-4000-8000-00000000beef";
  delta.chunks = {{kSha2, 5, 7}};
  delta.size = 5;
  delta.usize = 7;
  m.artifacts = {full, delta};
  return m;
}

std::string with(const std::string& from, const std::string& to) {
  std::string s = serialize_manifest(sample());
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("a serialized manifest parses back to the same release", "[repository][manifest]") {
  auto m = parse_manifest(serialize_manifest(sample()));
  REQUIRE(m);
  CHECK(*m == sample());
  REQUIRE(m->full());
  CHECK(m->full()->chunks.size() == 2);
  REQUIRE(m->delta_from("1.0"_v));
  CHECK(m->delta_from("1.0"_v)->parent_uuid == "0123abcd-0000-4000-8000-00000000beef");
  CHECK(m->delta_from("0.9"_v) == nullptr);
}

TEST_CASE("a manifest whose totals disagree with its chunks is refused", "[repository][manifest]") {
  auto m = parse_manifest(with("\"size\":15", "\"size\":16"));
  REQUIRE_FALSE(m);
  CHECK(m.error().code == "manifest.invalid");
  CHECK(m.error().message.find("sum of its chunks' sizes") != std::string::npos);
}

TEST_CASE("manifest fields of the wrong shape are refused with the field named", "[repository][manifest]") {
  struct Case {
    std::string from, to, mentions;
  };
  auto c = GENERATE(Case{"\"sha256\":\"aaaa", "\"sha256\":\"AAAA", "sha256"},
                    Case{"\"size\":10", "\"size\":-10", "size"},
                    Case{"\"size\":10", "\"size\":10.5", "size"},
                    Case{"\"usize\":30", "\"usize\":0", "usize"},
                    Case{"\"from\":\"1.0\"", "\"from\":\"2.0\"", "delta from the release itself"},
                    Case{"\"from\":\"1.0\",\"parent_uuid\":\"0123abcd-0000-4000-8000-00000000beef\",", "", "a second full stream"},
                    Case{"\"schema\":1", "\"schema\":1,\"extra\":true", "unknown key \"extra\""},
                    Case{"\"schema\":1", "\"schema\":1,\"schema\":1", "duplicate key"},
                    Case{"\"parent_uuid\":\"0123abcd", "\"parent_uuid\":\"0123ABCD", "parent_uuid"});
  auto m = parse_manifest(with(c.from, c.to));
  INFO(c.to);
  INFO((m ? std::string("accepted") : m.error().message));
  REQUIRE_FALSE(m);
  CHECK(m.error().code == "manifest.invalid");
  CHECK(m.error().message.find(c.mentions) != std::string::npos);
}

TEST_CASE("a manifest or release naming a bad version is refused with version.invalid and the field",
          "[repository][manifest]") {
  for (auto [from, to, field] : {std::tuple{"\"version\":\"2.0\"", "\"version\":\"../etc\"", "manifest.version"},
                                 std::tuple{"\"version\":\"2.0\"", "\"version\":\"2.0+1\"", "manifest.version"},
                                 std::tuple{"\"from\":\"1.0\"", "\"from\":\".1\"", ".from"},
                                 std::tuple{"\"from\":\"1.0\"", "\"from\":\"1.0+2\"", ".from"},
                                 std::tuple{"\"from\":\"1.0\"", "\"from\":\"\"", ".from"}}) {
    INFO(to);
    auto m = parse_manifest(with(from, to));
    REQUIRE_FALSE(m);
    CHECK(m.error().code == "version.invalid");
    CHECK_THAT(m.error().describe(), Catch::Contains(field));
  }
  ReleaseInfo info;
  info.version = *Version::parse("3.1");
  auto j = release_info_json(info);
  j["version"] = "2.0+1";
  auto r = parse_release_info(j);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "version.invalid");
  CHECK_THAT(r.error().describe(), Catch::Contains("release.version"));
}

TEST_CASE("an unsupported manifest schema is refused as such", "[repository][manifest]") {
  auto m = parse_manifest(with("\"schema\":1", "\"schema\":2"));
  REQUIRE_FALSE(m);
  CHECK(m.error().code == "manifest.unsupported");
}

TEST_CASE("non-JSON, oversized and deeply nested manifests are refused", "[repository][manifest]") {
  CHECK(parse_manifest("{\"schema\":1,").error().code == "manifest.invalid");
  CHECK(parse_manifest("[]").error().code == "manifest.invalid");
  CHECK(parse_manifest(std::string(kMaxManifestBytes + 1, ' ')).error().message.find("larger") != std::string::npos);
  std::string deep = std::string(50, '[') + std::string(50, ']');
  CHECK(parse_manifest("{\"schema\":1,\"version\":\"1\",\"artifacts\":" + deep + "}").error().message.find("nested") !=
        std::string::npos);
}

TEST_CASE("release custom data round-trips and rejects bad fields", "[repository][manifest]") {
  ReleaseInfo info;
  info.version = *Version::parse("3.1");
  info.channel = "beta";
  info.os_release = {{"ID", "ballast"}, {"VERSION_ID", "3.1"}};
  info.cmdline = "quiet";
  info.rollout = Rollout{1764000000, 86400};
  info.barrier = true;
  auto j = release_info_json(info);
  CHECK(j["rollout"]["start"] == "2025-11-24T16:00:00Z");
  auto back = parse_release_info(j);
  if (!back) FAIL(back.error().message);
  REQUIRE(back);
  CHECK(*back == info);

  auto bad = j;
  bad["revoked"] = "yes";
  CHECK(parse_release_info(bad).error().message.find("revoked") != std::string::npos);
  bad = j;
  bad["rollout"]["start"] = "yesterday";
  CHECK(parse_release_info(bad).error().message.find("RFC 3339") != std::string::npos);
  bad = j;
  bad["os_release"]["bad key"] = "x";
  CHECK_FALSE(parse_release_info(bad));
  bad = j;
  bad["cmdline"] = "a\nb";
  CHECK_FALSE(parse_release_info(bad));
  bad = j;
  bad["wave"] = 1;
  CHECK_FALSE(parse_release_info(bad));
}

TEST_CASE("a manifest's target name is the version's path", "[repository][manifest]") {
  CHECK(manifest_target_name(*Version::parse("1.2")) == "releases/1.2/manifest.json");
}

TEST_CASE("a manifest's expected PCR 11 values round-trip, are optional, and must be sha256 hex by phase",
          "[repository][manifest]") {
  Manifest m = sample();
  CHECK(serialize_manifest(m).find("measured_boot") == std::string::npos);  // older manifests: none
  CHECK_FALSE(parse_manifest(serialize_manifest(m))->measured_boot);
  m.measured_boot = MeasuredBoot{{{"", kSha1}, {"enter-initrd:leave-initrd:sysinit:ready", kSha2}}};
  auto back = parse_manifest(serialize_manifest(m));
  REQUIRE(back);
  CHECK(*back == m);
  auto bad = [&](const std::string& measured) {
    std::string s = serialize_manifest(sample());
    s.insert(s.size() - 1, ",\"measured_boot\":" + measured);
    auto r = parse_manifest(s);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "manifest.invalid");
  };
  bad("{\"pcr11_sha256\":{\"ready\":\"" + std::string(64, 'A') + "\"}}");
  bad("{\"pcr11_sha256\":{\"ready\":\"abc\"}}");
  bad("{\"pcr11_sha256\":{}}");
  bad("{\"pcr11_sha256\":{\"Ready!\":\"" + kSha1 + "\"}}");
  bad("{\"pcr11_sha256\":{\"ready\":\"" + kSha1 + "\"},\"pcr7\":1}");
}

namespace {

// Releases 1 … 5; 1 and 3 have a full stream. The loader counts what it was asked for.
struct Window {
  std::vector<ReleaseInfo> releases;
  std::vector<Version> loaded, skipped;
  std::vector<Version> unreadable;
  Window() {
    for (const char* v : {"1", "2", "3", "4", "5"}) {
      ReleaseInfo info;
      info.version = *Version::parse(v);
      releases.push_back(info);
    }
  }
  std::vector<Version> operator()(const Version& target, bool target_has_full, std::optional<Version> oldest_slot) {
    loaded.clear();
    skipped.clear();
    auto window = chain_window(
        releases, target, target_has_full, oldest_slot,
        [&](const ReleaseInfo& info) -> ballast::Result<Manifest> {
          loaded.push_back(info.version);
          if (std::find(unreadable.begin(), unreadable.end(), info.version) != unreadable.end())
            return ballast::fail("tuf.bad-hash", "unreadable");
          Manifest m;
          m.version = info.version;
          if (info.version == "1"_v || info.version == "3"_v) m.artifacts.push_back(Artifact{});
          return m;
        },
        [&](const ReleaseInfo& info, const ballast::Error&) { skipped.push_back(info.version); });
    std::vector<Version> out;
    for (const auto& m : window) out.push_back(m.version);
    return out;
  }
};

}  // namespace

TEST_CASE("the chain window is the releases above the oldest slot, and below it down to the newest full stream only when needed",
          "[repository][manifest]") {
  Window w;
  // A host on 2 and a target with a full stream: the releases between, nothing older.
  CHECK(w("5"_v, true, "2"_v) == std::vector<Version>{"4"_v, "3"_v});
  // No slot: down to the newest full stream, and no further.
  CHECK(w("5"_v, true, std::nullopt) == std::vector<Version>{"4"_v, "3"_v});
  CHECK(w.loaded == std::vector<Version>{"4"_v, "3"_v});
  // A host on 4, target without a full stream and none above the slot: down to 3.
  CHECK(w("5"_v, false, "4"_v) == std::vector<Version>{"4"_v, "3"_v});
  // With the target's full stream, a host on 4 reads nothing.
  CHECK(w("5"_v, true, "4"_v).empty());
  CHECK(w.loaded.empty());
  // Revoked or unreadable, a release is no part of it: the window goes on to the next full stream.
  w.releases[2].revoked = true;  // 3
  CHECK(w("5"_v, false, std::nullopt) == std::vector<Version>{"4"_v, "2"_v, "1"_v});
  w.unreadable = {"2"_v};
  CHECK(w("5"_v, false, std::nullopt) == std::vector<Version>{"4"_v, "1"_v});
  CHECK(w.skipped == std::vector<Version>{"2"_v});
}
