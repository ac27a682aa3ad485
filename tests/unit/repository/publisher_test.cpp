#include <catch2/catch.hpp>

#include <random>

#include "common/clock.hpp"
#include "common/file.hpp"
#include "repository/fetcher.hpp"
#include "repository/publisher.hpp"
#include "repository/release.hpp"
#include "repository/tuf/client.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::repository;

namespace {
using namespace ballast::version_literals;

std::string text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += "word" + std::to_string(rng() % 5000) + (rng() % 9 ? " " : "\n");
  return s;
}

struct Fixture {
  std::string base = *make_temp_dir("ballast-publish");
  std::string repo = base + "/repo", keys = base + "/keys", state = base + "/state";
  FakeClock clock;
  std::unique_ptr<HttpClient> http = make_curl_http_client();
  PackOptions pack;
  Fixture() {
    REQUIRE(tuf::RepoWriter::init(repo, keys, {}, tuf::KeyType::ed25519, &clock));
    REQUIRE(tuf::Client::init_trust(tuf::trusted_metadata_dir(state), repo + "/metadata/1.root.json"));
    pack.chunker = {16u << 10, 64u << 10, 256u << 10};
    pack.zstd_level = 3;
  }
  ~Fixture() { (void)remove_tree(base); }

  static ArtifactInput input(std::string from, std::string data, std::string uuid = "") {
    ArtifactInput in;
    in.from = std::move(from);
    in.parent_uuid = std::move(uuid);
    in.open = [data]() -> Result<std::unique_ptr<ByteSource>> { return std::make_unique<MemoryByteSource>(data); };
    return in;
  }
  Result<PublishReport> publish(const std::string& version, std::vector<ArtifactInput> inputs,
                                const std::string& channel = "stable") {
    auto w = BALLAST_TRY(tuf::RepoWriter::open(repo, keys, &clock));
    ReleaseInfo info;
    info.version = make_version(version);
    info.channel = channel;
    return publish_release(w, info, inputs, pack);
  }
  Result<tuf::Client> client() {
    auto c = BALLAST_TRY(tuf::open_repository(state, *http, clock, "file://" + repo));
    BALLAST_CHECK(c.refresh());
    return c;
  }
};

const std::string kUuid = "0123abcd-0000-4000-8000-00000000beef";

}  // namespace

TEST_CASE("a published release is listed, its manifest verified, and its artifact fetched back",
          "[repository][publisher]") {
  Fixture f;
  std::string v1 = text(400000, 1), v2 = text(400000, 2), d = text(50000, 3);
  REQUIRE(f.publish("1.0", {Fixture::input("", v1)}));
  auto r = f.publish("1.1", {Fixture::input("", v2), Fixture::input("1.0", d, kUuid)});
  REQUIRE(r);
  CHECK(r->manifest.artifacts.size() == 2);
  REQUIRE(f.publish("2.0-beta", {Fixture::input("", v2 + "b")}, "beta"));

  auto c = f.client();
  REQUIRE(c);
  auto releases = list_releases(*c);
  REQUIRE(releases);
  CHECK(releases->size() == 3);
  auto newest = choose_release(*releases, std::nullopt, "stable");
  REQUIRE(newest);
  CHECK(newest->info.version == "1.1"_v);
  auto m = load_manifest(*c, *newest);
  REQUIRE(m);
  CHECK(*m == r->manifest);

  // The delta names its parent as hosts know it: a received copy by its received uuid, the
  // publisher's own subvolume by its uuid; any other subvolume takes the full stream.
  const Artifact* delta = nullptr;
  for (const auto& a : m->artifacts)
    if (!a.is_full()) delta = &a;
  REQUIRE(delta);
  CHECK(delta->from == "1.0"_v);
  CHECK(delta_applies_to(*delta, LocalSubvolume{"ffffffff-0000-4000-8000-000000000000", kUuid}));
  CHECK(delta_applies_to(*delta, LocalSubvolume{kUuid, ""}));
  CHECK_FALSE(delta_applies_to(*delta, LocalSubvolume{kUuid, "eeeeeeee-0000-4000-8000-000000000000"}));
  REQUIRE(m->full());
  CHECK_FALSE(delta_applies_to(*m->full(), LocalSubvolume{kUuid, ""}));

  FetchOptions fo;
  fo.chunk_base_url = chunk_base_url("file://" + f.repo + "/");
  fo.cache_dir = f.state + "/cache";
  auto s = open_artifact_stream(*delta, fo);
  REQUIRE(s);
  std::string out(d.size() + 10, '\0');
  size_t got = 0;
  while (auto n = (*s)->read(out.data() + got, out.size() - got)) {
    REQUIRE(n);
    if (*n == 0) break;
    got += *n;
  }
  out.resize(got);
  CHECK(out == d);
}

TEST_CASE("publishing refuses a duplicate version, an unknown delta parent, no artifact and two full streams",
          "[repository][publisher]") {
  Fixture f;
  REQUIRE(f.publish("1", {Fixture::input("", "one")}));
  CHECK(f.publish("1", {Fixture::input("", "again")}).error().code == "repo.release-exists");
  CHECK(f.publish("2", {Fixture::input("", "two"), Fixture::input("0.9", "d")}).error().code ==
        "repo.unknown-release");
  CHECK(f.publish("2", {}).error().code == "repo.no-full");
  CHECK(f.publish("2", {Fixture::input("", "two"), Fixture::input("", "too")}).error().code == "repo.two-fulls");
  CHECK(f.publish("2", {Fixture::input("", "two"), Fixture::input("../x", "d")}).error().code == "version.invalid");
  // A stream that fails half-way publishes nothing.
  ArtifactInput broken;
  broken.open = []() -> Result<std::unique_ptr<ByteSource>> { return open_file_source("/nonexistent/stream"); };
  CHECK_FALSE(f.publish("2", {broken}));
  auto w = tuf::RepoWriter::open(f.repo, f.keys, &f.clock);
  REQUIRE(w);
  CHECK(w->targets().size() == 1);
}

TEST_CASE("a release without a full stream is published only when a new host reaches it from the newest earlier full stream",
          "[repository][publisher]") {
  Fixture f;
  REQUIRE(f.publish("1", {Fixture::input("", "one")}));
  auto two = f.publish("2", {Fixture::input("1", "d12", kUuid)});
  REQUIRE(two);
  CHECK_FALSE(two->manifest.full());
  REQUIRE(f.publish("3", {Fixture::input("2", "d23", kUuid)}));
  REQUIRE(f.publish("4", {Fixture::input("", "four")}));
  // A new host's chain starts at 4, the newest full stream; 3 is behind it.
  auto behind = f.publish("5", {Fixture::input("3", "d35", kUuid)});
  REQUIRE_FALSE(behind);
  CHECK(behind.error().code == "repo.no-full");
  REQUIRE(f.publish("5", {Fixture::input("4", "d45", kUuid), Fixture::input("3", "d35", kUuid)}));
  {
    auto w = tuf::RepoWriter::open(f.repo, f.keys, &f.clock);
    REQUIRE(w);
    REQUIRE(revoke_release(*w, "4"_v));
  }
  // With 4 revoked the chain starts at 1 again and goes through 2 and 3 (and 5, from 3).
  REQUIRE(f.publish("6", {Fixture::input("5", "d56", kUuid)}));
  // Published deltas-only manifests load through the client's strict parser.
  auto c = f.client();
  REQUIRE(c);
  auto releases = list_releases(*c);
  REQUIRE(releases);
  auto six = choose_release(*releases, "6"_v, "stable");
  REQUIRE(six);
  auto m = load_manifest(*c, *six);
  REQUIRE(m);
  CHECK_FALSE(m->full());
  CHECK(m->delta_from("5"_v));
}

TEST_CASE("revoking a release names the newer releases without a full stream that a new host can then not reach",
          "[repository][publisher]") {
  Fixture f;
  REQUIRE(f.publish("1", {Fixture::input("", "one")}));
  REQUIRE(f.publish("2", {Fixture::input("1", "d12", kUuid)}));
  REQUIRE(f.publish("3", {Fixture::input("2", "d23", kUuid)}));
  REQUIRE(f.publish("4", {Fixture::input("", "four"), Fixture::input("3", "d34", kUuid)}));
  REQUIRE(f.publish("5", {Fixture::input("4", "d45", kUuid)}));
  auto w = tuf::RepoWriter::open(f.repo, f.keys, &f.clock);
  REQUIRE(w);
  // 3 ran through 2; 4 has its own full stream, and 5 starts from it.
  auto cut = revoke_release(*w, "2"_v);
  REQUIRE(cut);
  CHECK(*cut == std::vector<Version>{"3"_v});
  // The revocation is committed all the same.
  auto c = f.client();
  REQUIRE(c);
  auto releases = list_releases(*c);
  REQUIRE(releases);
  CHECK(choose_release(*releases, "2"_v, "stable").error().code == "fetch.revoked");
  // Revoking 4 leaves 5 nothing to start from (3, older, is not 4's to name).
  cut = revoke_release(*w, "4"_v);
  REQUIRE(cut);
  CHECK(*cut == std::vector<Version>{"5"_v});
  // A release already revoked changes nothing; one no chain runs through cuts nothing.
  CHECK(revoke_release(*w, "4"_v)->empty());
  CHECK(revoke_release(*w, "5"_v)->empty());
}

TEST_CASE("a revoked release is skipped as newest and refused by name", "[repository][publisher]") {
  Fixture f;
  REQUIRE(f.publish("1", {Fixture::input("", "one")}));
  REQUIRE(f.publish("2", {Fixture::input("", "two")}));
  {
    auto w = tuf::RepoWriter::open(f.repo, f.keys, &f.clock);
    REQUIRE(w);
    REQUIRE(revoke_release(*w, "2"_v));
    CHECK(revoke_release(*w, "3"_v).error().code == "repo.unknown-release");
  }
  auto c = f.client();
  REQUIRE(c);
  auto releases = list_releases(*c);
  REQUIRE(releases);
  CHECK(choose_release(*releases, std::nullopt, "stable")->info.version == "1"_v);
  CHECK(choose_release(*releases, "2"_v, "stable").error().code == "fetch.revoked");
  CHECK(choose_release(*releases, "7"_v, "stable").error().code == "fetch.no-release");
  CHECK(choose_release(*releases, std::nullopt, "beta").error().code == "fetch.no-release");
}

TEST_CASE("a malformed newest release is skipped and the newest valid one is chosen", "[repository][publisher]") {
  Fixture f;
  REQUIRE(f.publish("1", {Fixture::input("", "one")}));
  REQUIRE(f.publish("2", {Fixture::input("", "two")}));
  REQUIRE(f.publish("3", {Fixture::input("", "three")}));
  {
    auto w = tuf::RepoWriter::open(f.repo, f.keys, &f.clock);
    REQUIRE(w);
    // Signed, but its release data is not what a host can read; 2's claims to be another version.
    REQUIRE(w->set_custom(manifest_target_name("3"_v), nlohmann::json{{"version", 3}}));
    auto two = release_info_json(*parse_release_info(w->targets().at(manifest_target_name("2"_v)).custom));
    two["version"] = "9";
    REQUIRE(w->set_custom(manifest_target_name("2"_v), two));
    REQUIRE(w->commit());
  }
  auto c = f.client();
  REQUIRE(c);
  auto releases = list_releases(*c);
  REQUIRE(releases);
  REQUIRE(releases->size() == 1);
  CHECK(choose_release(*releases, std::nullopt, "stable")->info.version == "1"_v);
  CHECK(choose_release(*releases, "3"_v, "stable").error().code == "fetch.no-release");
}

TEST_CASE("the full stream is packed at the full level and deltas at the delta level, through the repository's "
          "reuse index",
          "[repository][publisher]") {
  Fixture f;
  f.pack.full_zstd_level = 1;
  f.pack.zstd_level = 12;
  f.pack.history = 0;  // so each artifact's chunks can be compared with a plain pack of the same bytes
  std::string v1 = text(400000, 4), d = text(60000, 5);
  REQUIRE(f.publish("1", {Fixture::input("", v1)}));
  auto r = f.publish("2", {Fixture::input("", v1 + "2"), Fixture::input("1", d, kUuid)});
  REQUIRE(r);
  auto packed_at = [&](const std::string& data, int level) {
    PackOptions o = f.pack;
    o.zstd_level = level;
    MemoryByteSource src(data);
    auto dir = *make_temp_dir("ballast-publish-check");
    auto a = pack_stream(src, dir, o, nullptr);
    (void)remove_tree(dir);
    REQUIRE(a);
    return a->chunks;
  };
  REQUIRE(r->manifest.artifacts.size() == 2);
  CHECK(r->manifest.artifacts[0].chunks == packed_at(v1 + "2", 1));
  CHECK(r->manifest.artifacts[1].chunks == packed_at(d, 12));
  CHECK(r->manifest.artifacts[1].chunks != packed_at(d, 1));
  // Release 2's full stream is release 1's but for its end: all chunks but the last came from
  // the store through the index beside the repository, which is not a published file.
  CHECK(r->stats.reused >= r->manifest.artifacts[0].chunks.size() - 2);
  CHECK(r->stats.reused > 0);
  CHECK(path_exists(reuse_index_path(f.repo)));
  CHECK(reuse_index_path(f.repo).find("/targets/") == std::string::npos);
}

TEST_CASE("publishing refuses a zstd level outside 1..22 for either artifact kind before sending anything",
          "[repository][publisher]") {
  Fixture f;
  bool opened = false;
  ArtifactInput in = Fixture::input("", "one");
  auto open = in.open;
  in.open = [&opened, open] {
    opened = true;
    return open();
  };
  f.pack.full_zstd_level = 23;
  auto r = f.publish("1", {in});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "chunk.level");
  f.pack.full_zstd_level = 3;
  f.pack.zstd_level = 0;
  r = f.publish("1", {in});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "chunk.level");
  CHECK_FALSE(opened);
  CHECK_FALSE(path_exists(chunk_store_dir(f.repo)));
}
