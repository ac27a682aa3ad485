#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/unit/repository/tuf_test_repo.hpp"

using namespace ballast;
using namespace ballast::repository::tuf;
using namespace ballast::repository::tuf::testing;

namespace {

// A repository with one target, v1 of everything published and its root trusted.
struct Fixture : TestRepo {
  Fixture() {
    add_target("releases/1.0/manifest.json", "manifest one", json{{"version", "1.0"}});
    publish_root();
    publish();
    trust();
  }
};

}  // namespace

TEST_CASE("a valid repository refreshes and its target downloads with verified bytes", "[tuf]") {
  Fixture r;
  auto c = r.client();
  REQUIRE(c);
  REQUIRE(c->refresh());
  auto t = c->target("releases/1.0/manifest.json");
  REQUIRE(t);
  CHECK(t->length == 12);
  CHECK(t->custom["version"] == "1.0");
  CHECK(c->target_url(*t) == "https://repo.test/targets/releases/1.0/" + sha256_hex("manifest one") + ".manifest.json");
  auto bytes = c->download_target("releases/1.0/manifest.json", 1 << 20);
  REQUIRE(bytes);
  CHECK(*bytes == "manifest one");
  CHECK(c->target("nope").error().code == "tuf.unknown-target");
  // Trusted metadata persisted for the next run.
  for (const char* f : {"root.json", "timestamp.json", "snapshot.json", "targets.json"})
    CHECK(path_exists(r.state_dir + "/tuf/" + f));
}

TEST_CASE("a client without a trusted root refuses to open", "[tuf]") {
  TestRepo r;
  CHECK(r.client().error().code == "tuf.no-trust");
}

TEST_CASE("init_trust refuses a root that is not signed by its own keys", "[tuf]") {
  TestRepo r;
  auto other = new_key();
  r.put_meta("1.root.json", TestRepo::sign(r.root, {&other}));
  auto path = r.state_dir + "/anchor.json";
  REQUIRE(write_file_atomic(path, r.get_meta("1.root.json")));
  CHECK(Client::init_trust(r.state_dir + "/tuf", path).error().code == "tuf.threshold");
  CHECK_FALSE(path_exists(r.state_dir + "/tuf/root.json"));
}

TEST_CASE("root rotation signed by the old and the new root keys is followed through a chain", "[tuf]") {
  Fixture r;
  for (int v = 2; v <= 3; ++v) {
    auto old_key = std::move(r.keys["root"][0]);
    r.keys["root"].clear();
    r.keys["root"].push_back(new_key());
    r.set_root_roles();
    r.root["version"] = v;
    r.publish_root({&old_key});
  }
  auto c = r.client();
  REQUIRE(c);
  REQUIRE(c->refresh());
  CHECK(c->root_version() == 3);
  REQUIRE(r.refresh_code() == "");  // and again from the persisted root v3
}

TEST_CASE("a new root not signed by a threshold of the old root's keys is refused", "[tuf]") {
  Fixture r;
  r.keys["root"][0] = new_key();
  r.set_root_roles();
  r.root["version"] = 2;
  r.publish_root();  // only the new key
  CHECK(r.refresh_code() == "tuf.threshold");
  auto c = r.client();
  CHECK(c->root_version() == 1);
}

TEST_CASE("a new root not signed by a threshold of its own keys is refused", "[tuf]") {
  Fixture r;
  auto old_key = std::move(r.keys["root"][0]);
  r.keys["root"][0] = new_key();
  r.set_root_roles();
  r.root["version"] = 2;
  r.put_meta("2.root.json", TestRepo::sign(r.root, {&old_key}));
  CHECK(r.refresh_code() == "tuf.threshold");
}

TEST_CASE("a root file holding an older version than its name is a rollback", "[tuf]") {
  Fixture r;
  r.put_meta("2.root.json", r.get_meta("1.root.json"));
  CHECK(r.refresh_code() == "tuf.rollback");
}

TEST_CASE("the number of root versions fetched in one refresh is capped", "[tuf]") {
  Fixture r;
  for (int v = 2; v <= 6; ++v) {
    r.root["version"] = v;
    r.publish_root();
  }
  ClientOptions o;
  o.max_root_rotations = 3;
  auto c = r.client(o);
  REQUIRE(c->refresh());
  CHECK(c->root_version() == 4);
}

TEST_CASE("an expired root or timestamp or snapshot or targets is a freeze attack", "[tuf]") {
  Fixture r;
  SECTION("root") {
    r.root["version"] = 2;
    r.root["expires"] = r.in_days(-1);
    r.publish_root();
  }
  SECTION("timestamp") {
    r.timestamp["expires"] = r.in_days(-1);
    r.bump_all();
    r.publish();
  }
  SECTION("snapshot") {
    r.snapshot["expires"] = r.in_days(-1);
    r.bump_all();
    r.publish();
  }
  SECTION("targets") {
    r.targets["expires"] = r.in_days(-1);
    r.bump_all();
    r.publish();
  }
  SECTION("everything, by the clock moving on") {
    r.clock.advance(std::chrono::hours(24 * 400));
  }
  CHECK(r.refresh_code() == "tuf.expired");
}

namespace {
// Reads the wall clock once as `first`, and `later` on every further call: a client that read
// the clock more than once per refresh would see metadata expire mid-update.
class SteppingClock final : public Clock {
 public:
  SteppingClock(std::chrono::system_clock::time_point first, std::chrono::system_clock::time_point later)
      : first_(first), later_(later) {}
  std::chrono::system_clock::time_point now() const override { return calls_++ ? later_ : first_; }
  std::chrono::steady_clock::time_point monotonic() const override { return {}; }
  mutable int calls_ = 0;

 private:
  std::chrono::system_clock::time_point first_, later_;
};
}  // namespace

TEST_CASE("expiry is judged against one update start time read once", "[tuf]") {
  Fixture r;
  SteppingClock clock(r.clock.now(), r.clock.now() + std::chrono::hours(24 * 30));
  auto c = Client::open(r.state_dir + "/tuf", r.http, clock, "https://repo.test/metadata", "https://repo.test/targets");
  REQUIRE(c);
  REQUIRE(c->refresh());
  CHECK(clock.calls_ == 1);
}

TEST_CASE("a timestamp older than the trusted one is a rollback", "[tuf]") {
  Fixture r;
  auto v1 = r.get_meta("timestamp.json");
  r.bump_all();
  r.publish();
  REQUIRE(r.refresh_code() == "");
  r.put_meta("timestamp.json", v1);
  CHECK(r.refresh_code() == "tuf.rollback");
}

TEST_CASE("a timestamp naming an older snapshot than the trusted timestamp did is a rollback", "[tuf]") {
  Fixture r;
  r.snapshot["version"] = 5;
  r.publish();
  REQUIRE(r.refresh_code() == "");
  r.timestamp["version"] = 2;
  r.snapshot["version"] = 4;
  r.publish();
  CHECK(r.refresh_code() == "tuf.rollback");
}

TEST_CASE("a snapshot listing an older targets version than the trusted snapshot is a rollback", "[tuf]") {
  Fixture r;
  r.targets["version"] = 3;
  r.publish();
  REQUIRE(r.refresh_code() == "");
  r.targets["version"] = 2;
  r.snapshot["version"] = 2;
  r.timestamp["version"] = 2;
  r.publish();
  CHECK(r.refresh_code() == "tuf.rollback");
}

TEST_CASE("a snapshot of a version other than the timestamp names is mix-and-match", "[tuf]") {
  Fixture r;
  r.meta_hashes = false;  // else the hash check catches it first
  r.bump_all();
  r.publish();
  r.put_meta("2.snapshot.json", r.get_meta("1.snapshot.json"));
  CHECK(r.refresh_code() == "tuf.mix-and-match");
}

TEST_CASE("targets of a version other than the snapshot names are mix-and-match", "[tuf]") {
  Fixture r;
  r.meta_hashes = false;
  r.bump_all();
  r.publish();
  r.put_meta("2.targets.json", r.get_meta("1.targets.json"));
  CHECK(r.refresh_code() == "tuf.mix-and-match");
}

TEST_CASE("signatures are counted once per key against the threshold", "[tuf]") {
  Fixture r;
  r.keys["targets"].push_back(new_key());
  r.set_root_roles();
  r.root["roles"]["targets"]["threshold"] = 2;
  r.root["version"] = 2;
  r.publish_root();
  r.bump_all();
  SECTION("one of two keys signs") {
    auto second = std::move(r.keys["targets"][1]);
    r.keys["targets"].pop_back();
    r.publish();
    CHECK(r.refresh_code() == "tuf.threshold");
  }
  SECTION("the same key signs twice") {
    auto second = std::move(r.keys["targets"][1]);
    r.keys["targets"][1] = PrivateKey::from_pem(*r.keys["targets"][0].to_pem()).value();
    r.publish();
    CHECK(r.refresh_code() == "tuf.bad-metadata");
  }
  SECTION("both sign") {
    r.publish();
    CHECK(r.refresh_code() == "");
  }
}

TEST_CASE("a signature over altered content is a bad signature", "[tuf]") {
  Fixture r;
  r.bump_all();
  r.publish();
  auto doc = json::parse(r.get_meta("timestamp.json"));
  doc["signed"]["version"] = 7;
  r.put_meta("timestamp.json", doc.dump());
  CHECK(r.refresh_code() == "tuf.bad-signature");
}

TEST_CASE("metadata of the wrong length or hash is refused", "[tuf]") {
  Fixture r;
  r.bump_all();
  r.publish();
  auto snap = r.get_meta("2.snapshot.json");
  SECTION("longer than listed") {
    r.put_meta("2.snapshot.json", snap + " ");
    CHECK(r.refresh_code() == "tuf.length-mismatch");
  }
  SECTION("shorter than listed") {
    r.put_meta("2.snapshot.json", snap.substr(0, snap.size() - 1));
    CHECK(r.refresh_code() == "tuf.length-mismatch");
  }
  SECTION("same length, other bytes") {
    snap[snap.size() - 1] = ' ';
    r.put_meta("2.snapshot.json", snap);
    CHECK(r.refresh_code() == "tuf.hash-mismatch");
  }
  SECTION("targets of the wrong hash") {
    auto t = r.get_meta("2.targets.json");
    t[t.size() - 1] = ' ';
    r.put_meta("2.targets.json", t);
    CHECK(r.refresh_code() == "tuf.hash-mismatch");
  }
}

TEST_CASE("metadata larger than the size cap is endless data", "[tuf]") {
  Fixture r;
  ClientOptions o;
  o.max_metadata_size = 4096;
  SECTION("timestamp") { r.put_meta("timestamp.json", std::string(5000, ' ') + r.get_meta("timestamp.json")); }
  SECTION("root") { r.put_meta("2.root.json", std::string(5000, ' ')); }
  CHECK(r.refresh_code(o) == "tuf.too-large");
}

TEST_CASE("a target whose bytes differ from its metadata is refused", "[tuf]") {
  Fixture r;
  auto c = r.client();
  REQUIRE(c->refresh());
  SECTION("other bytes") {
    r.put_target("releases/1.0/manifest.json", "manifest One", sha256_hex("manifest one"));
    CHECK(c->download_target("releases/1.0/manifest.json", 1 << 20).error().code == "tuf.hash-mismatch");
  }
  SECTION("more bytes") {
    r.put_target("releases/1.0/manifest.json", "manifest one and more", sha256_hex("manifest one"));
    CHECK(c->download_target("releases/1.0/manifest.json", 1 << 20).error().code == "tuf.length-mismatch");
  }
  SECTION("larger than the caller allows") {
    CHECK(c->download_target("releases/1.0/manifest.json", 4).error().code == "tuf.too-large");
  }
}

TEST_CASE("rotating the timestamp key recovers from a fast-forward attack", "[tuf]") {
  Fixture r;
  // The attacker, holding the timestamp key, pushes the version sky-high.
  r.timestamp["version"] = 1000;
  r.publish();
  REQUIRE(r.refresh_code() == "");
  // The publisher rotates the timestamp key and starts again from a normal version.
  r.keys["timestamp"][0] = new_key();
  r.set_root_roles();
  r.root["version"] = 2;
  r.publish_root();
  r.timestamp["version"] = 2;
  r.publish();
  auto c = r.client();
  REQUIRE(c->refresh());
  CHECK(c->timestamp_version() == 2);
}

TEST_CASE("a failed refresh leaves the client able to update once the repository is repaired", "[tuf]") {
  Fixture r;
  REQUIRE(r.refresh_code() == "");
  r.bump_all();
  r.add_target("releases/2.0/manifest.json", "manifest two");
  r.publish();
  auto good = r.get_meta("2.targets.json");
  auto bad = good;
  bad[bad.size() - 1] = ' ';
  r.put_meta("2.targets.json", bad);
  REQUIRE(r.refresh_code() == "tuf.hash-mismatch");
  REQUIRE(r.refresh_code() == "tuf.hash-mismatch");
  r.put_meta("2.targets.json", good);
  auto c = r.client();
  REQUIRE(c->refresh());
  CHECK(c->target("releases/2.0/manifest.json"));
}

TEST_CASE("an unchanged repository refreshes from the trusted copies", "[tuf]") {
  Fixture r;
  REQUIRE(r.refresh_code() == "");
  r.http.requests.clear();
  REQUIRE(r.refresh_code() == "");
  // Only the root probe and the timestamp: snapshot and targets came from the state dir.
  CHECK(r.http.requests == std::vector<std::string>{"https://repo.test/metadata/2.root.json",
                                                     "https://repo.test/metadata/timestamp.json"});
}

TEST_CASE("malformed metadata is refused as bad metadata", "[tuf]") {
  Fixture r;
  SECTION("not JSON") { r.put_meta("timestamp.json", "{\"signed\": "); }
  SECTION("wrong type") { r.put_meta("timestamp.json", r.get_meta("1.snapshot.json")); }
  SECTION("a floating point number, which canonical JSON cannot sign") {
    auto doc = json::parse(r.get_meta("timestamp.json"));
    doc["signed"]["version"] = 2.5;
    r.put_meta("timestamp.json", doc.dump());
  }
  SECTION("a missing field") {
    auto doc = json::parse(r.get_meta("timestamp.json"));
    doc["signed"].erase("expires");
    r.put_meta("timestamp.json", doc.dump());
  }
  CHECK(r.refresh_code() == "tuf.bad-metadata");
}

namespace {
// Adds a delegation from `parent` (top-level "targets" or a delegated role) to a new role.
void delegate(TestRepo& r, const std::string& parent, const std::string& role, json paths, bool terminating = false) {
  json& p = parent == "targets" ? r.targets : r.delegated[parent];
  r.delegated_keys[role].push_back(new_key());
  auto& k = r.delegated_keys[role][0];
  if (!p.contains("delegations")) p["delegations"] = {{"keys", json::object()}, {"roles", json::array()}};
  p["delegations"]["keys"][k.key_id()] = k.public_key().to_json();
  p["delegations"]["roles"].push_back(
      {{"name", role}, {"keyids", {k.key_id()}}, {"threshold", 1}, {"terminating", terminating}, {"paths", paths}});
  r.delegated[role] = {{"_type", "targets"}, {"spec_version", "1.0.31"}, {"version", 1},
                       {"expires", r.in_days(30)}, {"targets", json::object()}};
}
void add_delegated_target(TestRepo& r, const std::string& role, const std::string& name, const std::string& bytes) {
  r.delegated[role]["targets"][name] = {{"length", bytes.size()}, {"hashes", {{"sha256", sha256_hex(bytes)}}}};
  r.put_target(name, bytes);
}
}  // namespace

TEST_CASE("targets of delegated roles are found within the paths they are trusted for", "[tuf]") {
  TestRepo r;
  delegate(r, "targets", "releases", {"releases/*/*"});
  delegate(r, "releases", "stable", {"releases/2.*/*"});
  add_delegated_target(r, "releases", "releases/1.0/manifest.json", "one");
  add_delegated_target(r, "stable", "releases/2.0/manifest.json", "two");
  add_delegated_target(r, "releases", "other/evil.json", "evil");  // outside its paths
  r.publish_root();
  r.publish();
  r.trust();
  auto c = r.client();
  REQUIRE(c->refresh());
  CHECK(*c->download_target("releases/1.0/manifest.json", 100) == "one");
  CHECK(*c->download_target("releases/2.0/manifest.json", 100) == "two");
  CHECK(c->target("other/evil.json").error().code == "tuf.unknown-target");
  auto all = c->targets();
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].name == "releases/1.0/manifest.json");
  CHECK(path_exists(r.state_dir + "/tuf/delegated/stable.json"));
}

TEST_CASE("a delegated role signed by the wrong key is refused", "[tuf]") {
  TestRepo r;
  delegate(r, "targets", "releases", {"releases/*/*"});
  add_delegated_target(r, "releases", "releases/1.0/manifest.json", "one");
  r.delegated_keys["releases"][0] = new_key();
  r.publish_root();
  r.publish();
  r.trust();
  auto c = r.client();
  REQUIRE(c->refresh());
  CHECK(c->target("releases/1.0/manifest.json").error().code == "tuf.threshold");
}

TEST_CASE("a terminating delegation ends the search", "[tuf]") {
  TestRepo r;
  delegate(r, "targets", "a", {"x/*"}, true);
  delegate(r, "targets", "b", {"x/*"});
  add_delegated_target(r, "b", "x/file", "from b");
  r.publish_root();
  r.publish();
  r.trust();
  auto c = r.client();
  REQUIRE(c->refresh());
  CHECK(c->target("x/file").error().code == "tuf.unknown-target");
}

TEST_CASE("the number of targets roles visited in one lookup is capped", "[tuf]") {
  TestRepo r;
  std::string parent = "targets";
  for (int i = 0; i < 6; ++i) {
    auto role = "level" + std::to_string(i);
    delegate(r, parent, role, {"*"});
    parent = role;
  }
  add_delegated_target(r, parent, "deep", "deep bytes");
  r.publish_root();
  r.publish();
  r.trust();
  ClientOptions o;
  o.max_delegations = 4;
  auto c = r.client(o);
  REQUIRE(c->refresh());
  CHECK(c->target("deep").error().code == "tuf.unknown-target");
  auto wide = r.client();
  REQUIRE(wide->refresh());
  CHECK(*wide->download_target("deep", 100) == "deep bytes");
}

TEST_CASE("one key listed under two key ids does not count twice towards the threshold", "[tuf]") {
  Fixture r;
  auto& k = r.keys["targets"][0];
  r.root["keys"]["alias"] = k.public_key().to_json();
  r.root["roles"]["targets"] = {{"keyids", {k.key_id(), "alias"}}, {"threshold", 2}};
  r.root["version"] = 2;
  r.publish_root();
  r.bump_all();
  r.publish();
  auto doc = json::parse(r.get_meta("2.targets.json"));
  auto sig = doc["signatures"][0];
  sig["keyid"] = "alias";
  doc["signatures"].push_back(sig);
  r.put_meta("2.targets.json", doc.dump());
  r.snapshot["meta"]["targets.json"] = {{"version", 2}};
  r.publish_snapshot_and_timestamp();
  CHECK(r.refresh_code() == "tuf.threshold");
}

TEST_CASE("delegation path patterns never cross '/' and hash prefixes match the name's sha256", "[tuf]") {
  DelegatedRole r;
  r.paths = std::vector<std::string>{"releases/*/manifest.json", "top-?"};
  CHECK(r.matches("releases/1.0/manifest.json"));
  CHECK_FALSE(r.matches("releases/1.0/x/manifest.json"));
  CHECK_FALSE(r.matches("releases/manifest.json"));
  CHECK(r.matches("top-a"));
  CHECK_FALSE(r.matches("top-ab"));
  DelegatedRole h;
  auto hash = sha256_hex("chunks/abc");
  h.path_hash_prefixes = std::vector<std::string>{hash.substr(0, 2)};
  CHECK(h.matches("chunks/abc"));
  h.path_hash_prefixes = std::vector<std::string>{hash[0] == '0' ? "1" : "0"};
  CHECK_FALSE(h.matches("chunks/abc"));
  DelegatedRole none;
  CHECK_FALSE(none.matches("anything"));
}

TEST_CASE("expiry times beyond the clock's range mean never or long ago, without overflow", "[tuf]") {
  auto far = parse_time("9999-12-31T23:59:59Z");
  REQUIRE(far);
  CHECK(*far == TimePoint::max());
  auto early = parse_time("0001-01-01T00:00:00Z");
  REQUIRE(early);
  CHECK(*early == TimePoint::min());
  auto ordinary = parse_time("2030-01-02T03:04:05Z");
  REQUIRE(ordinary);
  CHECK(format_time(*ordinary) == "2030-01-02T03:04:05Z");
}

TEST_CASE("load_trusted serves targets from what the last refresh trusted, without fetching any metadata", "[tuf]") {
  Fixture r;
  {
    auto never = r.client();
    REQUIRE(never);
    CHECK(never->load_trusted().error().code == "tuf.not-refreshed");
  }
  REQUIRE(r.refresh_code() == "");
  // The repository moves on; a client loading the trusted metadata still sees what the refresh saw.
  r.add_target("releases/2.0/manifest.json", "manifest two", json{{"version", "2.0"}});
  r.publish();
  r.http.requests.clear();
  auto c = r.client();
  REQUIRE(c);
  REQUIRE(c->load_trusted());
  CHECK(c->target("releases/1.0/manifest.json"));
  CHECK(c->target("releases/2.0/manifest.json").error().code == "tuf.unknown-target");
  for (const auto& url : r.http.requests) CHECK(url.find("/metadata/") == std::string::npos);
  CHECK(*c->download_target("releases/1.0/manifest.json", 1 << 20) == "manifest one");
  // Trusted files altered on disk are refused, not used.
  REQUIRE(write_file_atomic(r.state_dir + "/tuf/snapshot.json", "{}"));
  CHECK_FALSE(r.client()->load_trusted());
}

TEST_CASE("a signatures list naming one key id twice is refused whatever the threshold", "[tuf]") {
  Fixture r;
  r.bump_all();
  r.publish();
  // Threshold 1 and a valid signature: only the repeated key id is wrong.
  auto doc = json::parse(r.get_meta("2.targets.json"));
  doc["signatures"].push_back(doc["signatures"][0]);
  r.put_meta("2.targets.json", doc.dump());
  r.snapshot["meta"]["targets.json"] = {{"version", 2}};
  r.publish_snapshot_and_timestamp();
  auto c = r.client();
  REQUIRE(c);
  auto st = c->refresh();
  REQUIRE_FALSE(st);
  CHECK(st.error().code == "tuf.bad-metadata");
  CHECK(st.error().message.find("twice") != std::string::npos);
}

TEST_CASE("delegated roles are fetched by the lookup that needs them, not by a refresh", "[tuf]") {
  TestRepo r;
  delegate(r, "targets", "releases", {"releases/*/*"});
  add_delegated_target(r, "releases", "releases/1.0/manifest.json", "one");
  r.add_target("top", "top level");
  r.publish_root();
  r.publish();
  r.trust();
  auto c = r.client();
  REQUIRE(c->refresh());
  for (const auto& url : r.http.requests) CHECK(url.find("releases.json") == std::string::npos);
  CHECK(*c->download_target("top", 100) == "top level");
  CHECK_FALSE(path_exists(r.state_dir + "/tuf/delegated/releases.json"));
  CHECK(*c->download_target("releases/1.0/manifest.json", 100) == "one");
  CHECK(path_exists(r.state_dir + "/tuf/delegated/releases.json"));
}

TEST_CASE("a delegated role the new snapshot no longer lists fails only the lookups that need it", "[tuf]") {
  TestRepo r;
  delegate(r, "targets", "releases", {"releases/*/*"});
  add_delegated_target(r, "releases", "releases/1.0/manifest.json", "one");
  r.add_target("top", "top level");
  r.publish_root();
  r.publish();
  r.trust();
  {
    auto c = r.client();
    REQUIRE(c->refresh());
    REQUIRE(c->target("releases/1.0/manifest.json"));  // trusted, kept in the state dir
  }
  // The next publication still delegates to "releases" but its snapshot does not list it.
  r.delegated.erase("releases");
  r.snapshot["meta"].erase("releases.json");
  r.bump_all();
  r.publish();
  auto c = r.client();
  auto st = c->refresh();
  INFO((st ? "" : st.error().describe()));
  REQUIRE(st);
  CHECK(c->snapshot_version() == 2);
  CHECK(*c->download_target("top", 100) == "top level");
  CHECK(c->target("releases/1.0/manifest.json").error().code == "tuf.missing-role");
  auto all = c->targets();
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK((*all)[0].name == "top");
}

TEST_CASE("a target whose local copy matches the trusted length and hashes is not fetched again", "[tuf]") {
  Fixture r;
  const std::string name = "releases/1.0/manifest.json";
  const std::string copy = r.state_dir + "/out/manifest.json";
  auto c = r.client();
  REQUIRE(c->refresh());
  REQUIRE(*c->download_target(name, 1 << 20, copy) == "manifest one");
  CHECK(*read_file(copy) == "manifest one");
  auto fetches = [&] {
    return std::count_if(r.http.requests.begin(), r.http.requests.end(),
                         [](const std::string& u) { return u.find("/targets/") != std::string::npos; });
  };
  auto before = fetches();
  CHECK(*c->download_target(name, 1 << 20, copy) == "manifest one");
  CHECK(fetches() == before);
  SECTION("a local copy that differs is replaced by the verified download") {
    REQUIRE(write_file_atomic(copy, "manifest 0ne"));
    CHECK(*c->download_target(name, 1 << 20, copy) == "manifest one");
    CHECK(fetches() == before + 1);
    CHECK(*read_file(copy) == "manifest one");
  }
  SECTION("the client's target cache serves download_target without a path") {
    ClientOptions o;
    o.target_cache_dir = r.state_dir + "/cache";
    auto cached = r.client(o);
    REQUIRE(cached->refresh());
    REQUIRE(cached->download_target(name, 1 << 20));
    auto after_first = fetches();
    CHECK(*cached->download_target(name, 1 << 20) == "manifest one");
    CHECK(fetches() == after_first);
  }
}

TEST_CASE("targets are fetched from a target base URL apart from the metadata", "[tuf]") {
  Fixture r;
  auto c = open_repository(r.state_dir, r.http, r.clock, "https://repo.test", {}, "https://cdn.test/t");
  REQUIRE(c);
  REQUIRE(c->refresh());
  auto info = c->target("releases/1.0/manifest.json");
  REQUIRE(info);
  CHECK(c->target_url(*info).rfind("https://cdn.test/t/releases/1.0/", 0) == 0);
  CHECK(c->download_target("releases/1.0/manifest.json", 1 << 20).error().code == "http.not-found");
  r.http.files[c->target_url(*info)] = "manifest one";
  CHECK(*c->download_target("releases/1.0/manifest.json", 1 << 20) == "manifest one");
}
