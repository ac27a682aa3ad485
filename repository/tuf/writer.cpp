#include "repository/tuf/writer.hpp"

#include <algorithm>

#include "common/file.hpp"
#include "repository/layout.hpp"

namespace ballast::repository::tuf {
namespace {

using json = nlohmann::json;

constexpr const char* kSpecVersion = "1.0.31";

const Clock& clock_or_system(const Clock* c) {
  static const SystemClock system;
  return c ? *c : system;
}

Status check_target_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.back() == '/')
    return fail("repo.bad-target-name", "target name '" + name + "' must be a relative path");
  size_t start = 0;
  while (start <= name.size()) {
    auto end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    auto part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return fail("repo.bad-target-name", "target name '" + name + "' has an empty, '.' or '..' component");
    start = end + 1;
  }
  return ok();
}

// Where a target's bytes live under targets/: DIR/<sha256>.BASE (consistent snapshots).
std::string target_rel_path(const std::string& name, const std::string& sha256) {
  auto slash = name.rfind('/');
  if (slash == std::string::npos) return sha256 + "." + name;
  return name.substr(0, slash + 1) + sha256 + "." + name.substr(slash + 1);
}

Result<json> read_json(const std::string& path) {
  auto bytes = BALLAST_TRY(read_file(path));
  try {
    return json::parse(bytes);
  } catch (const json::exception& e) {
    return fail("repo.bad-file", path + ": " + e.what());
  }
}

}  // namespace

Result<std::map<std::string, PrivateKey>> load_key_dir(const std::string& key_dir, std::optional<KeyType> create_type,
                                                        bool require_all) {
  if (create_type) BALLAST_CHECK(make_dirs(key_dir, 0700));
  std::map<std::string, PrivateKey> keys;
  for (const char* role : kTopLevelRoles) {
    auto path = path_join(key_dir, std::string(role) + ".pem");
    if (!path_exists(path)) {
      if (!create_type && !require_all) continue;
      if (!create_type) return fail("repo.missing-key", "no key " + path);
      auto key = BALLAST_TRY(PrivateKey::generate(*create_type));
      BALLAST_CHECK(write_file_atomic(path, BALLAST_TRY(key.to_pem()), 0600));
      keys.emplace(role, std::move(key));
      continue;
    }
    auto pem = BALLAST_TRY(read_file(path, 1 << 20));
    keys.emplace(role, BALLAST_TRY(with_context(PrivateKey::from_pem(pem), path)));
  }
  return keys;
}

json RepoWriter::root_json(const std::map<std::string, PrivateKey>& keys, uint64_t version, TimePoint expires) {
  json j{{"_type", "root"},
         {"spec_version", kSpecVersion},
         {"version", version},
         {"expires", format_time(expires)},
         {"consistent_snapshot", true},
         {"keys", json::object()},
         {"roles", json::object()}};
  for (const auto& [role, key] : keys) {
    j["keys"][key.key_id()] = key.public_key().to_json();
    j["roles"][role] = {{"keyids", json::array({key.key_id()})}, {"threshold", 1}};
  }
  return j;
}

TimePoint RepoWriter::now() const {
  return std::chrono::time_point_cast<std::chrono::seconds>(clock_or_system(clock_).now());
}

std::string RepoWriter::meta_path(const std::string& file) const {
  return path_join(layout::metadata_dir(repo_dir_), file);
}

Status RepoWriter::init(const std::string& repo_dir, const std::string& key_dir, const Expiries& expiries,
                        KeyType key_type, const Clock* clock) {
  auto meta_dir = layout::metadata_dir(repo_dir);
  if (path_exists(path_join(meta_dir, "root.json")) || path_exists(path_join(meta_dir, "1.root.json")))
    return fail("repo.exists", repo_dir + " already holds a repository");
  auto keys = BALLAST_TRY(load_key_dir(key_dir, key_type));
  BALLAST_CHECK(make_dirs(meta_dir));
  BALLAST_CHECK(make_dirs(layout::targets_dir(repo_dir)));
  BALLAST_CHECK(write_file_atomic(path_join(repo_dir, "ballast-repo.json"),
                                  json{{"expiries",
                                        {{"root", expiries.root.count()},
                                         {"targets", expiries.targets.count()},
                                         {"snapshot", expiries.snapshot.count()},
                                         {"timestamp", expiries.timestamp.count()}}}}
                                          .dump(2) + "\n"));
  RepoWriter w;
  w.repo_dir_ = repo_dir;
  w.key_dir_ = key_dir;
  w.clock_ = clock;
  w.expiries_ = expiries;
  w.keys_ = std::move(keys);
  w.root_version_ = 1;
  auto root = BALLAST_TRY(sign_metadata(root_json(w.keys_, 1, w.now() + expiries.root), {&w.keys_.at("root")}));
  BALLAST_CHECK(write_file_atomic(w.meta_path("1.root.json"), root));
  BALLAST_CHECK(write_file_atomic(w.meta_path("root.json"), root));
  w.dirty_ = true;
  return w.commit();
}

Result<RepoWriter> RepoWriter::open(const std::string& repo_dir, const std::string& key_dir, const Clock* clock) {
  RepoWriter w;
  w.repo_dir_ = repo_dir;
  w.key_dir_ = key_dir;
  w.clock_ = clock;
  auto settings = BALLAST_TRY(read_json(path_join(repo_dir, "ballast-repo.json")));
  try {
    const auto& e = settings.at("expiries");
    w.expiries_ = {std::chrono::seconds(e.at("root").get<int64_t>()), std::chrono::seconds(e.at("targets").get<int64_t>()),
                   std::chrono::seconds(e.at("snapshot").get<int64_t>()),
                   std::chrono::seconds(e.at("timestamp").get<int64_t>())};
  } catch (const json::exception& e) {
    return fail("repo.bad-file", repo_dir + "/ballast-repo.json: " + e.what());
  }
  w.keys_ = BALLAST_TRY(load_key_dir(key_dir, std::nullopt, false));
  if (w.keys_.empty()) return fail("repo.missing-key", "no keys in " + key_dir);
  auto root = BALLAST_TRY(parse_root(BALLAST_TRY(read_file(w.meta_path("root.json")))));
  for (const char* role : kTopLevelRoles) {
    const auto& ids = root.roles[role].keyids;
    if (!w.keys_.count(role)) continue;
    if (std::find(ids.begin(), ids.end(), w.keys_.at(role).key_id()) == ids.end())
      return fail("repo.wrong-keys", key_dir + "/" + role + ".pem is not a " + role + " key of root v" +
                                         std::to_string(root.env.version));
  }
  w.root_version_ = root.env.version;
  auto ts = BALLAST_TRY(parse_timestamp(BALLAST_TRY(read_file(w.meta_path("timestamp.json")))));
  w.timestamp_version_ = ts.env.version;
  w.snapshot_version_ = ts.snapshot.version;
  w.snapshot_bytes_ = BALLAST_TRY(read_file(w.meta_path(std::to_string(w.snapshot_version_) + ".snapshot.json")));
  auto snap = BALLAST_TRY(parse_snapshot(w.snapshot_bytes_));
  w.targets_version_ = snap.meta.at("targets.json").version;
  auto targets = BALLAST_TRY(parse_targets(BALLAST_TRY(read_file(w.meta_path(std::to_string(w.targets_version_) + ".targets.json")))));
  w.targets_ = std::move(targets.targets);
  if (targets.env.signed_json.contains("delegations")) w.delegations_ = targets.env.signed_json["delegations"];
  return w;
}

Status RepoWriter::add_target(const std::string& name, std::string_view bytes, const nlohmann::json& custom) {
  BALLAST_CHECK(check_target_name(name));
  auto hash = sha256_hex(bytes);
  auto path = path_join(layout::targets_dir(repo_dir_), target_rel_path(name, hash));
  BALLAST_CHECK(make_dirs(path.substr(0, path.rfind('/'))));
  BALLAST_CHECK(write_file_atomic(path, bytes));
  targets_[name] = TargetInfo{name, bytes.size(), {{"sha256", hash}}, custom};
  dirty_ = true;
  return ok();
}

Status RepoWriter::add_target_file(const std::string& name, const std::string& path, const nlohmann::json& custom) {
  auto bytes = BALLAST_TRY(read_file(path, size_t(1) << 32));
  return add_target(name, bytes, custom);
}

Status RepoWriter::set_custom(const std::string& name, const nlohmann::json& custom) {
  auto it = targets_.find(name);
  if (it == targets_.end()) return fail("repo.unknown-target", "no target '" + name + "'");
  it->second.custom = custom;
  dirty_ = true;
  return ok();
}

Result<std::string> RepoWriter::read_target(const std::string& name) const {
  auto it = targets_.find(name);
  if (it == targets_.end()) return fail("repo.unknown-target", "no target '" + name + "'");
  const auto hash = it->second.hashes.find("sha256");
  if (hash == it->second.hashes.end()) return fail("repo.corrupt-target", "target '" + name + "' lists no sha256");
  auto path = path_join(layout::targets_dir(repo_dir_), target_rel_path(name, hash->second));
  auto bytes = BALLAST_TRY(read_file(path, size_t(1) << 32));
  if (bytes.size() != it->second.length || sha256_hex(bytes) != hash->second)
    return fail("repo.corrupt-target", path + " does not match the length and sha256 that targets metadata lists for it");
  return bytes;
}

Status RepoWriter::remove_target(const std::string& name) {
  if (!targets_.erase(name)) return fail("repo.unknown-target", "no target '" + name + "'");
  dirty_ = true;
  return ok();
}

Result<const PrivateKey*> RepoWriter::key(const std::string& role) const {
  auto it = keys_.find(role);
  if (it == keys_.end()) return fail("repo.missing-key", "signing " + role + " needs " + key_dir_ + "/" + role + ".pem");
  return &it->second;
}

Status RepoWriter::write_targets() {
  const PrivateKey* signer = BALLAST_TRY(key("targets"));
  ++targets_version_;
  json targets = json::object();
  for (const auto& [name, info] : targets_) targets[name] = target_info_json(info);
  json j{{"_type", "targets"},
         {"spec_version", kSpecVersion},
         {"version", targets_version_},
         {"expires", format_time(now() + expiries_.targets)},
         {"targets", targets}};
  if (!delegations_.is_null()) j["delegations"] = delegations_;
  auto bytes = BALLAST_TRY(sign_metadata(j, {signer}));
  return write_file_atomic(meta_path(std::to_string(targets_version_) + ".targets.json"), bytes);
}

Status RepoWriter::write_snapshot() {
  const PrivateKey* signer = BALLAST_TRY(key("snapshot"));
  auto file = std::to_string(targets_version_) + ".targets.json";
  auto targets_bytes = BALLAST_TRY(read_file(meta_path(file)));
  ++snapshot_version_;
  json j{{"_type", "snapshot"},
         {"spec_version", kSpecVersion},
         {"version", snapshot_version_},
         {"expires", format_time(now() + expiries_.snapshot)},
         {"meta", {{"targets.json", meta_file_json({targets_version_, targets_bytes.size(),
                                                    {{"sha256", sha256_hex(targets_bytes)}}})}}}};
  snapshot_bytes_ = BALLAST_TRY(sign_metadata(j, {signer}));
  return write_file_atomic(meta_path(std::to_string(snapshot_version_) + ".snapshot.json"), snapshot_bytes_);
}

Status RepoWriter::write_timestamp() {
  const PrivateKey* signer = BALLAST_TRY(key("timestamp"));
  ++timestamp_version_;
  json j{{"_type", "timestamp"},
         {"spec_version", kSpecVersion},
         {"version", timestamp_version_},
         {"expires", format_time(now() + expiries_.timestamp)},
         {"meta", {{"snapshot.json", meta_file_json({snapshot_version_, snapshot_bytes_.size(),
                                                     {{"sha256", sha256_hex(snapshot_bytes_)}}})}}}};
  auto bytes = BALLAST_TRY(sign_metadata(j, {signer}));
  return write_file_atomic(meta_path("timestamp.json"), bytes);
}

Status RepoWriter::commit() {
  if (dirty_) BALLAST_CHECK(write_targets());
  BALLAST_CHECK(write_snapshot());
  BALLAST_CHECK(write_timestamp());
  dirty_ = false;
  return ok();
}

Status RepoWriter::refresh_timestamp() { return write_timestamp(); }

Status RepoWriter::rotate_root(const std::string& new_key_dir) {
  const PrivateKey* old_root = BALLAST_TRY(key("root"));
  auto old_type = old_root->public_key().scheme;
  auto type = BALLAST_TRY(parse_key_type(old_type));
  auto new_keys = BALLAST_TRY(load_key_dir(new_key_dir, type));
  if (new_keys.at("root").key_id() == old_root->key_id())
    return fail("repo.same-keys", new_key_dir + " holds the current root key; rotate to new keys");
  uint64_t version = root_version_ + 1;
  auto root = BALLAST_TRY(sign_metadata(root_json(new_keys, version, now() + expiries_.root),
                                        {old_root, &new_keys.at("root")}));
  BALLAST_CHECK(write_file_atomic(meta_path(std::to_string(version) + ".root.json"), root));
  BALLAST_CHECK(write_file_atomic(meta_path("root.json"), root));
  root_version_ = version;
  keys_ = std::move(new_keys);
  key_dir_ = new_key_dir;
  dirty_ = true;
  return commit();
}

}  // namespace ballast::repository::tuf
