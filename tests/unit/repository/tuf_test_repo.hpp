// An in-memory TUF repository for unit tests of the client: every metadata field is a plain
// JSON value the test can change (to stage an attack) before publishing it to a
// FakeHttpClient. Not a second implementation of the writer: it signs exactly what it is given.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/file.hpp"
#include "repository/http.hpp"
#include "repository/tuf/canonical_json.hpp"
#include "repository/tuf/client.hpp"
#include "repository/tuf/crypto.hpp"
#include "repository/tuf/metadata.hpp"

namespace ballast::repository::tuf::testing {

using json = nlohmann::json;

inline PrivateKey new_key() { return *PrivateKey::generate(KeyType::ed25519); }

class TestRepo {
 public:
  static constexpr const char* kMeta = "https://repo.test/metadata/";
  static constexpr const char* kTargets = "https://repo.test/targets/";

  FakeHttpClient http;
  FakeClock clock;
  std::map<std::string, std::vector<PrivateKey>> keys;  // role → keys
  json root, timestamp, snapshot, targets;
  std::map<std::string, json> delegated;                // role → signed targets metadata
  std::map<std::string, std::vector<PrivateKey>> delegated_keys;
  bool meta_hashes = true;                              // lengths and hashes in timestamp/snapshot meta
  std::string state_dir;

  TestRepo() {
    for (const char* role : {"root", "timestamp", "snapshot", "targets"}) keys[role].push_back(new_key());
    root = {{"_type", "root"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", in_days(365)},
            {"consistent_snapshot", true}, {"keys", json::object()}, {"roles", json::object()}};
    set_root_roles();
    targets = {{"_type", "targets"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", in_days(90)},
               {"targets", json::object()}};
    snapshot = {{"_type", "snapshot"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", in_days(7)},
                {"meta", json::object()}};
    timestamp = {{"_type", "timestamp"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", in_days(1)},
                 {"meta", json::object()}};
    state_dir = *make_temp_dir("tuf-unit");
  }
  ~TestRepo() { (void)remove_tree(state_dir); }

  std::string in_days(int days) const {
    return format_time(clock.now() + std::chrono::hours(24 * days));
  }

  // Lists the current keys of every role in `root` (threshold 1 unless changed afterwards).
  void set_root_roles() {
    root["keys"] = json::object();
    for (auto& [role, ks] : keys) {
      json ids = json::array();
      for (auto& k : ks) {
        root["keys"][k.key_id()] = k.public_key().to_json();
        ids.push_back(k.key_id());
      }
      root["roles"][role] = {{"keyids", ids}, {"threshold", 1}};
    }
  }

  static std::string sign(const json& signed_json, const std::vector<const PrivateKey*>& by) {
    return *sign_metadata(signed_json, by);
  }
  static std::vector<const PrivateKey*> ptrs(const std::vector<PrivateKey>& ks) {
    std::vector<const PrivateKey*> out;
    for (auto& k : ks) out.push_back(&k);
    return out;
  }

  void put_meta(const std::string& file, const std::string& bytes) { http.files[kMeta + file] = bytes; }
  std::string get_meta(const std::string& file) { return http.files[kMeta + file]; }

  // Signs `root` with its own keys (and `extra`, e.g. the previous root's keys) as N.root.json.
  void publish_root(const std::vector<const PrivateKey*>& extra = {}) {
    auto by = ptrs(keys["root"]);
    by.insert(by.end(), extra.begin(), extra.end());
    put_meta(std::to_string(root["version"].get<uint64_t>()) + ".root.json", sign(root, by));
  }

  void add_target(const std::string& name, const std::string& bytes, json custom = nullptr) {
    json info{{"length", bytes.size()}, {"hashes", {{"sha256", sha256_hex(bytes)}}}};
    if (!custom.is_null()) info["custom"] = custom;
    targets["targets"][name] = info;
    put_target(name, bytes);
  }
  void put_target(const std::string& name, const std::string& bytes, std::string hash = "") {
    if (hash.empty()) hash = sha256_hex(bytes);
    auto slash = name.rfind('/');
    std::string path = slash == std::string::npos ? hash + "." + name
                                                  : name.substr(0, slash + 1) + hash + "." + name.substr(slash + 1);
    http.files[kTargets + path] = bytes;
  }

  json meta_for(const std::string& bytes, uint64_t version) const {
    json m{{"version", version}};
    if (meta_hashes) {
      m["length"] = bytes.size();
      m["hashes"] = {{"sha256", sha256_hex(bytes)}};
    }
    return m;
  }

  // Signs and serves targets (and delegated roles), then snapshot, then timestamp, in the
  // versions their JSON currently holds.
  void publish() {
    for (auto& [role, signed_json] : delegated) {
      auto bytes = sign(signed_json, ptrs(delegated_keys[role]));
      auto v = signed_json["version"].get<uint64_t>();
      put_meta(std::to_string(v) + "." + role + ".json", bytes);
      snapshot["meta"][role + ".json"] = meta_for(bytes, v);
    }
    auto tbytes = sign(targets, ptrs(keys["targets"]));
    auto tv = targets["version"].get<uint64_t>();
    put_meta(std::to_string(tv) + ".targets.json", tbytes);
    snapshot["meta"]["targets.json"] = meta_for(tbytes, tv);
    publish_snapshot_and_timestamp();
  }
  void publish_snapshot_and_timestamp() {
    auto sbytes = sign(snapshot, ptrs(keys["snapshot"]));
    auto sv = snapshot["version"].get<uint64_t>();
    put_meta(std::to_string(sv) + ".snapshot.json", sbytes);
    timestamp["meta"] = {{"snapshot.json", meta_for(sbytes, sv)}};
    put_meta("timestamp.json", sign(timestamp, ptrs(keys["timestamp"])));
  }

  // Next version of everything, as a publisher's commit makes it.
  void bump_all() {
    for (auto* j : {&targets, &snapshot, &timestamp}) (*j)["version"] = (*j)["version"].get<uint64_t>() + 1;
    for (auto& [_, d] : delegated) d["version"] = d["version"].get<uint64_t>() + 1;
  }

  // Trusts root v1 as published now.
  void trust() {
    auto path = state_dir + "/anchor.json";
    (void)write_file_atomic(path, get_meta("1.root.json"));
    (void)Client::init_trust(state_dir + "/tuf", path);
  }

  Result<Client> client(ClientOptions o = {}) {
    return Client::open(state_dir + "/tuf", http, clock, "https://repo.test/metadata", "https://repo.test/targets", o);
  }

  // Publishes v1 of everything, trusts the root, and returns the code of a refresh ("" on success).
  std::string refresh_code(ClientOptions o = {}) {
    auto c = client(o);
    if (!c) return c.error().code;
    auto st = c->refresh();
    return st ? "" : st.error().code;
  }
};

}  // namespace ballast::repository::tuf::testing
