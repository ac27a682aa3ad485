#include <catch2/catch.hpp>

#include "common/clock.hpp"
#include "common/file.hpp"
#include "repository/http.hpp"
#include "repository/tuf/client.hpp"
#include "repository/tuf/writer.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace ballast::repository::tuf;

namespace {

struct Dirs {
  std::string base = *make_temp_dir("tuf-writer");
  std::string repo = base + "/repo";
  std::string keys = base + "/keys";
  std::string state = base + "/state";
  FakeClock clock;
  std::unique_ptr<HttpClient> http = make_curl_http_client();
  ~Dirs() { (void)remove_tree(base); }

  Status trust() { return Client::init_trust(trusted_metadata_dir(state), repo + "/metadata/1.root.json"); }
  Result<Client> client() { return open_repository(state, *http, clock, "file://" + repo); }
};

}  // namespace

TEST_CASE("a repository made by the writer is accepted by the client and serves its targets", "[tuf]") {
  auto type = GENERATE(KeyType::ed25519, KeyType::ecdsa_p256, KeyType::rsa_pss);
  Dirs d;
  REQUIRE(RepoWriter::init(d.repo, d.keys, {}, type, &d.clock));
  REQUIRE(d.trust());
  auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
  REQUIRE(w);
  REQUIRE(w->add_target("releases/1.0/manifest.json", "the manifest", {{"revoked", false}}));
  REQUIRE(w->add_target("top", "top level"));
  REQUIRE(w->commit());
  CHECK(w->targets_version() == 2);
  CHECK(w->snapshot_version() == 2);
  CHECK(w->timestamp_version() == 2);
  CHECK(path_exists(d.repo + "/targets/releases/1.0/" + sha256_hex("the manifest") + ".manifest.json"));
  auto c = d.client();
  REQUIRE(c);
  REQUIRE(c->refresh());
  auto t = c->target("releases/1.0/manifest.json");
  REQUIRE(t);
  CHECK(t->custom["revoked"] == false);
  CHECK(*c->download_target("releases/1.0/manifest.json", 1 << 20) == "the manifest");
  CHECK(*c->download_target("top", 1 << 20) == "top level");
}

TEST_CASE("the writer keeps its state across open and set_custom and remove_target", "[tuf]") {
  Dirs d;
  REQUIRE(RepoWriter::init(d.repo, d.keys, {}, KeyType::ed25519, &d.clock));
  {
    auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
    REQUIRE(w->add_target("a", "A"));
    REQUIRE(w->add_target("b", "B"));
    REQUIRE(w->commit());
  }
  auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
  REQUIRE(w);
  CHECK(w->targets().size() == 2);
  REQUIRE(w->set_custom("a", {{"revoked", true}}));
  REQUIRE(w->remove_target("b"));
  CHECK(w->set_custom("nope", nullptr).error().code == "repo.unknown-target");
  REQUIRE(w->commit());
  REQUIRE(d.trust());
  auto c = d.client();
  REQUIRE(c->refresh());
  CHECK(c->target("a")->custom["revoked"] == true);
  CHECK(c->target("b").error().code == "tuf.unknown-target");
}

TEST_CASE("the writer refuses to overwrite a repository and refuses wrong keys and unsafe target names", "[tuf]") {
  Dirs d;
  REQUIRE(RepoWriter::init(d.repo, d.keys, {}, KeyType::ed25519, &d.clock));
  CHECK(RepoWriter::init(d.repo, d.keys, {}, KeyType::ed25519, &d.clock).error().code == "repo.exists");
  REQUIRE(RepoWriter::init(d.base + "/other", d.base + "/otherkeys", {}, KeyType::ed25519, &d.clock));
  CHECK(RepoWriter::open(d.repo, d.base + "/otherkeys", &d.clock).error().code == "repo.wrong-keys");
  CHECK(RepoWriter::open(d.repo, d.base + "/nokeys", &d.clock).error().code == "repo.missing-key");
  auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
  for (const char* bad : {"", "/abs", "a/../b", "a//b", "dir/", "..", "./x"})
    CHECK(w->add_target(bad, "x").error().code == "repo.bad-target-name");
}

TEST_CASE("repo timestamp revives a client whose timestamp expired", "[tuf]") {
  Dirs d;
  Expiries e;
  e.timestamp = std::chrono::hours(1);
  REQUIRE(RepoWriter::init(d.repo, d.keys, e, KeyType::ed25519, &d.clock));
  REQUIRE(d.trust());
  REQUIRE(d.client()->refresh());
  d.clock.advance(std::chrono::hours(2));
  CHECK(d.client()->refresh().error().code == "tuf.expired");
  auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
  REQUIRE(w->refresh_timestamp());
  CHECK(w->timestamp_version() == 2);
  CHECK(w->snapshot_version() == 1);
  auto c = d.client();
  REQUIRE(c->refresh());
  CHECK(c->timestamp_version() == 2);
}

TEST_CASE("rotate-root moves every role to new keys and clients follow", "[tuf]") {
  Dirs d;
  REQUIRE(RepoWriter::init(d.repo, d.keys, {}, KeyType::ed25519, &d.clock));
  REQUIRE(d.trust());
  {
    auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
    REQUIRE(w->add_target("a", "A"));
    REQUIRE(w->commit());
  }
  REQUIRE(d.client()->refresh());
  auto w = RepoWriter::open(d.repo, d.keys, &d.clock);
  CHECK(w->rotate_root(d.keys).error().code == "repo.same-keys");
  REQUIRE(w->rotate_root(d.base + "/newkeys"));
  CHECK(w->root_version() == 2);
  CHECK(RepoWriter::open(d.repo, d.keys, &d.clock).error().code == "repo.wrong-keys");
  REQUIRE(RepoWriter::open(d.repo, d.base + "/newkeys", &d.clock));
  auto c = d.client();
  REQUIRE(c->refresh());
  CHECK(c->root_version() == 2);
  CHECK(*c->download_target("a", 10) == "A");
}

TEST_CASE("repo timestamp needs only the timestamp key but publishing targets without their key is refused", "[tuf]") {
  Dirs d;
  REQUIRE(RepoWriter::init(d.repo, d.keys, {}, KeyType::ed25519, &d.clock));
  REQUIRE(make_dirs(d.base + "/online"));
  REQUIRE(write_file_atomic(d.base + "/online/timestamp.pem", *read_file(d.keys + "/timestamp.pem"), 0600));
  auto w = RepoWriter::open(d.repo, d.base + "/online", &d.clock);
  REQUIRE(w);
  REQUIRE(w->refresh_timestamp());
  REQUIRE(w->add_target("a", "A"));
  CHECK(w->commit().error().code == "repo.missing-key");
  REQUIRE(d.trust());
  auto c = d.client();
  REQUIRE(c->refresh());
  CHECK(c->timestamp_version() == 2);
  CHECK(c->target("a").error().code == "tuf.unknown-target");
}
