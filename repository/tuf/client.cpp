#include "repository/tuf/client.hpp"

#include <algorithm>
#include <set>

#include "common/file.hpp"
#include "repository/layout.hpp"
#include "repository/url.hpp"

namespace ballast::repository::tuf {
namespace {

// Role names become file names and URL parts: percent-encode everything but unreserved
// characters, so a role named "../x" or "a/b" stays one path component.
std::string escape_role(const std::string& name) {
  std::string out = percent_encode(name);
  if (out == "." || out == "..") out = "%2E" + out.substr(1);
  return out;
}

std::string state_file_of(const std::string& role) {
  return role == "targets" ? "targets.json" : "delegated/" + escape_role(role) + ".json";
}

bool same_role_keys(const RoleKeys& a, const RoleKeys& b) {
  auto x = a.keyids, y = b.keyids;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

Result<Client> Client::open(std::string state_dir, HttpClient& http, const Clock& clock,
                            std::string metadata_base_url, std::string targets_base_url, ClientOptions options) {
  Client c;
  c.state_dir_ = std::move(state_dir);
  c.http_ = &http;
  c.clock_ = &clock;
  c.metadata_base_ = trim_slash(std::move(metadata_base_url));
  c.targets_base_ = trim_slash(std::move(targets_base_url));
  c.options_ = options;
  BALLAST_CHECK(c.load_trusted_root());
  return c;
}

Status Client::init_trust(const std::string& state_dir, const std::string& root_json_path) {
  auto bytes = BALLAST_TRY(read_file(root_json_path, 8 << 20));
  auto root = BALLAST_TRY(with_context(parse_root(bytes), root_json_path));
  BALLAST_CHECK(with_context(verify_threshold(root.env, root.keys, root.roles["root"], "root"), root_json_path));
  BALLAST_CHECK(make_dirs(state_dir, 0700));
  if (path_exists(path_join(state_dir, "root.json"))) return ok();
  return write_file_atomic(path_join(state_dir, "root.json"), bytes);
}

std::optional<std::string> Client::read_state(const std::string& file) const {
  auto r = read_file(path_join(state_dir_, file), options_.max_metadata_size);
  if (!r) return std::nullopt;
  return std::move(*r);
}

Status Client::write_state(const std::string& file, const std::string& bytes) {
  auto path = path_join(state_dir_, file);
  if (auto slash = file.rfind('/'); slash != std::string::npos)
    BALLAST_CHECK(make_dirs(path_join(state_dir_, file.substr(0, slash)), 0700));
  return write_file_atomic(path, bytes);
}

std::string Client::metadata_url(const std::string& file) const { return metadata_base_ + "/" + file; }

Status Client::load_trusted_root() {
  auto bytes = read_state("root.json");
  if (!bytes) return fail("tuf.no-trust", "no trusted root in " + state_dir_ + " (run `ballast tuf init`)");
  auto root = BALLAST_TRY(with_context(parse_root(*bytes), "trusted root in " + state_dir_));
  BALLAST_CHECK(with_context(verify_threshold(root.env, root.keys, root.roles["root"], "trusted root"),
                             "trusted root in " + state_dir_));
  root_ = std::make_unique<Root>(std::move(root));
  return ok();
}

Result<std::string> Client::fetch_metadata(const std::string& file, std::optional<uint64_t> length) {
  auto url = metadata_url(file);
  auto resp = http_->get(url, length.value_or(options_.max_metadata_size));
  if (!resp) {
    auto& e = resp.error();
    if (e.code == "http.too-large") {
      // A known length exceeded is a length mismatch; no length and past the cap is the
      // endless-data attack.
      if (length) return fail("tuf.length-mismatch", file + " is longer than the " + std::to_string(*length) + " bytes listed");
      return fail("tuf.too-large", file + " exceeds the metadata size cap of " +
                                       std::to_string(options_.max_metadata_size) + " bytes (endless data?)");
    }
    return tl::unexpected(std::move(e));
  }
  return std::move(resp->body);
}

Status Client::begin_cycle() {
  refreshed_ = false;
  // One start time for the whole cycle: metadata that expires while we download is judged
  // against the same instant as everything else.
  start_ = clock_->now();
  targets_.clear();
  timestamp_.reset();
  snapshot_.reset();
  return load_trusted_root();
}

Status Client::refresh() {
  BALLAST_CHECK(begin_cycle());
  BALLAST_CHECK(with_context(update_root(), "updating root"));
  BALLAST_CHECK(with_context(update_timestamp(), "updating timestamp"));
  BALLAST_CHECK(with_context(update_snapshot(), "updating snapshot"));
  BALLAST_CHECK(with_context(load_targets_role("targets", root_->keys, root_->roles["targets"]), "updating targets"));
  refreshed_ = true;
  return ok();
}

Status Client::load_trusted() {
  BALLAST_CHECK(begin_cycle());
  BALLAST_CHECK(check_expiry(root_->env, start_, "root v" + std::to_string(root_->env.version)));
  auto not_refreshed = [&](const std::string& file) {
    return fail("tuf.not-refreshed", "no trusted " + file + " in " + state_dir_ + ": the repository was never refreshed");
  };
  auto ts_bytes = read_state("timestamp.json");
  if (!ts_bytes) return not_refreshed("timestamp.json");
  auto ts = BALLAST_TRY(with_context(parse_timestamp(*ts_bytes), "trusted timestamp"));
  BALLAST_CHECK(verify_threshold(ts.env, root_->keys, root_->roles["timestamp"], "trusted timestamp"));
  BALLAST_CHECK(check_expiry(ts.env, start_, "timestamp v" + std::to_string(ts.env.version)));
  auto snap_bytes = read_state("snapshot.json");
  if (!snap_bytes) return not_refreshed("snapshot.json");
  BALLAST_CHECK(check_length_and_hashes(*snap_bytes, ts.snapshot.length, ts.snapshot.hashes, "trusted snapshot"));
  auto snap = BALLAST_TRY(with_context(parse_snapshot(*snap_bytes), "trusted snapshot"));
  BALLAST_CHECK(verify_threshold(snap.env, root_->keys, root_->roles["snapshot"], "trusted snapshot"));
  if (snap.env.version != ts.snapshot.version)
    return fail("tuf.mix-and-match", "the trusted snapshot is version " + std::to_string(snap.env.version) +
                                         " but the trusted timestamp names version " + std::to_string(ts.snapshot.version));
  BALLAST_CHECK(check_expiry(snap.env, start_, "snapshot v" + std::to_string(snap.env.version)));
  // The trusted targets must be exactly what the snapshot names: load_targets_role would
  // otherwise download it, and this must not touch the network.
  auto meta = snap.meta.find("targets.json");
  auto targets_bytes = read_state(state_file_of("targets"));
  if (!targets_bytes) return not_refreshed("targets.json");
  if (meta == snap.meta.end()) return fail("tuf.missing-role", "the trusted snapshot does not list role 'targets'");
  BALLAST_CHECK(check_length_and_hashes(*targets_bytes, meta->second.length, meta->second.hashes, "trusted targets"));
  if (auto t = parse_targets(*targets_bytes); !t || t->env.version != meta->second.version)
    return fail("tuf.mix-and-match", "the trusted targets are not the version the trusted snapshot names");
  timestamp_ = std::make_unique<Timestamp>(std::move(ts));
  snapshot_ = std::make_unique<Snapshot>(std::move(snap));
  BALLAST_CHECK(with_context(load_targets_role("targets", root_->keys, root_->roles["targets"]), "trusted targets"));
  refreshed_ = true;
  return ok();
}

Status Client::update_root() {
  const RoleKeys old_timestamp = root_->roles["timestamp"];
  const RoleKeys old_snapshot = root_->roles["snapshot"];
  for (unsigned i = 0; i < options_.max_root_rotations; ++i) {
    uint64_t next = root_->env.version + 1;
    auto file = std::to_string(next) + ".root.json";
    auto bytes = fetch_metadata(file, std::nullopt);
    if (!bytes) {
      if (bytes.error().code == "http.not-found") break;  // no newer root: the chain ends here
      return tl::unexpected(std::move(bytes.error()));
    }
    auto root = BALLAST_TRY(with_context(parse_root(*bytes), file));
    BALLAST_CHECK(verify_threshold(root.env, root_->keys, root_->roles["root"],
                                   file + " (signed by the keys of root v" + std::to_string(root_->env.version) + ")"));
    if (root.env.version < next)
      return fail("tuf.rollback", file + " holds root version " + std::to_string(root.env.version));
    if (root.env.version != next)
      return fail("tuf.bad-metadata", file + " holds root version " + std::to_string(root.env.version));
    BALLAST_CHECK(verify_threshold(root.env, root.keys, root.roles["root"], file + " (signed by its own keys)"));
    BALLAST_CHECK(write_state("root.json", *bytes));
    root_ = std::make_unique<Root>(std::move(root));
  }
  BALLAST_CHECK(check_expiry(root_->env, start_, "root v" + std::to_string(root_->env.version)));
  // Fast-forward recovery: metadata signed by rotated-out keys may carry versions an attacker
  // pushed arbitrarily high; forget it so the rollback checks start again from the new keys.
  if (!same_role_keys(old_timestamp, root_->roles["timestamp"]) || !same_role_keys(old_snapshot, root_->roles["snapshot"])) {
    BALLAST_CHECK(remove_if_exists(path_join(state_dir_, "timestamp.json")));
    BALLAST_CHECK(remove_if_exists(path_join(state_dir_, "snapshot.json")));
  }
  return ok();
}

Status Client::update_timestamp() {
  std::unique_ptr<Timestamp> trusted;
  if (auto bytes = read_state("timestamp.json")) {
    auto t = parse_timestamp(*bytes);
    // A trusted file no longer signed by the current keys is simply not trusted any more.
    if (t && verify_threshold(t->env, root_->keys, root_->roles["timestamp"], "trusted timestamp"))
      trusted = std::make_unique<Timestamp>(std::move(*t));
  }
  auto bytes = BALLAST_TRY(fetch_metadata("timestamp.json", std::nullopt));
  auto ts = BALLAST_TRY(parse_timestamp(bytes));
  BALLAST_CHECK(verify_threshold(ts.env, root_->keys, root_->roles["timestamp"], "timestamp.json"));
  if (trusted) {
    if (ts.env.version < trusted->env.version)
      return fail("tuf.rollback", "timestamp version " + std::to_string(ts.env.version) + " is older than the trusted " +
                                      std::to_string(trusted->env.version));
    if (ts.env.version == trusted->env.version) {
      // Nothing new: keep what we already trust (it still has to be unexpired).
      BALLAST_CHECK(check_expiry(trusted->env, start_, "timestamp v" + std::to_string(trusted->env.version)));
      timestamp_ = std::move(trusted);
      return ok();
    }
    if (ts.snapshot.version < trusted->snapshot.version)
      return fail("tuf.rollback", "timestamp lists snapshot version " + std::to_string(ts.snapshot.version) +
                                      ", older than the trusted " + std::to_string(trusted->snapshot.version));
  }
  BALLAST_CHECK(check_expiry(ts.env, start_, "timestamp v" + std::to_string(ts.env.version)));
  BALLAST_CHECK(write_state("timestamp.json", bytes));
  timestamp_ = std::make_unique<Timestamp>(std::move(ts));
  return ok();
}

Status Client::update_snapshot() {
  const MetaFile& meta = timestamp_->snapshot;
  std::unique_ptr<Snapshot> trusted;
  if (auto bytes = read_state("snapshot.json")) {
    auto s = parse_snapshot(*bytes);
    if (s && verify_threshold(s->env, root_->keys, root_->roles["snapshot"], "trusted snapshot")) {
      // The trusted copy is exactly what the timestamp names: no need to download it again.
      if (s->env.version == meta.version && check_length_and_hashes(*bytes, meta.length, meta.hashes, "snapshot")) {
        BALLAST_CHECK(check_expiry(s->env, start_, "snapshot v" + std::to_string(s->env.version)));
        snapshot_ = std::make_unique<Snapshot>(std::move(*s));
        return ok();
      }
      trusted = std::make_unique<Snapshot>(std::move(*s));
    }
  }
  auto file = root_->consistent_snapshot ? std::to_string(meta.version) + ".snapshot.json" : "snapshot.json";
  auto bytes = BALLAST_TRY(fetch_metadata(file, meta.length));
  BALLAST_CHECK(check_length_and_hashes(bytes, meta.length, meta.hashes, file));
  auto snap = BALLAST_TRY(parse_snapshot(bytes));
  BALLAST_CHECK(verify_threshold(snap.env, root_->keys, root_->roles["snapshot"], file));
  if (snap.env.version != meta.version)
    return fail("tuf.mix-and-match", file + " is snapshot version " + std::to_string(snap.env.version) +
                                         " but the timestamp names version " + std::to_string(meta.version));
  if (trusted) {
    if (snap.env.version < trusted->env.version)
      return fail("tuf.rollback", "snapshot version " + std::to_string(snap.env.version) + " is older than the trusted " +
                                      std::to_string(trusted->env.version));
    for (const auto& [name, old] : trusted->meta) {
      auto it = snap.meta.find(name);
      // Delegated roles are loaded when a lookup needs them (5.6.7): one the new snapshot no
      // longer lists is judged then (tuf.missing-role), not by a refresh of the top-level roles.
      if (it == snap.meta.end() && name != "targets.json") continue;
      if (it == snap.meta.end()) return fail("tuf.rollback", "snapshot no longer lists " + name);
      if (it->second.version < old.version)
        return fail("tuf.rollback", "snapshot lists " + name + " version " + std::to_string(it->second.version) +
                                        ", older than the trusted " + std::to_string(old.version));
    }
  }
  BALLAST_CHECK(check_expiry(snap.env, start_, "snapshot v" + std::to_string(snap.env.version)));
  BALLAST_CHECK(write_state("snapshot.json", bytes));
  snapshot_ = std::make_unique<Snapshot>(std::move(snap));
  return ok();
}

Result<const Targets*> Client::load_targets_role(const std::string& role, const std::map<std::string, PublicKey>& keys,
                                                 const RoleKeys& role_keys) {
  if (auto it = targets_.find(role); it != targets_.end()) return it->second.get();
  auto meta_it = snapshot_->meta.find(role + ".json");
  if (meta_it == snapshot_->meta.end())
    return fail("tuf.missing-role", "the snapshot does not list role '" + role + "'");
  const MetaFile& meta = meta_it->second;
  const auto state_file = state_file_of(role);
  std::string what = "targets role '" + role + "' v" + std::to_string(meta.version);
  if (auto bytes = read_state(state_file)) {
    auto t = parse_targets(*bytes);
    if (t && t->env.version == meta.version && verify_threshold(t->env, keys, role_keys, what) &&
        check_length_and_hashes(*bytes, meta.length, meta.hashes, what)) {
      BALLAST_CHECK(check_expiry(t->env, start_, what));
      return (targets_[role] = std::make_unique<Targets>(std::move(*t))).get();
    }
  }
  auto name = escape_role(role) + ".json";
  auto file = root_->consistent_snapshot ? std::to_string(meta.version) + "." + name : name;
  auto bytes = BALLAST_TRY(fetch_metadata(file, meta.length));
  BALLAST_CHECK(check_length_and_hashes(bytes, meta.length, meta.hashes, file));
  auto t = BALLAST_TRY(parse_targets(bytes));
  BALLAST_CHECK(verify_threshold(t.env, keys, role_keys, file));
  if (t.env.version != meta.version)
    return fail("tuf.mix-and-match", file + " is version " + std::to_string(t.env.version) +
                                         " but the snapshot names version " + std::to_string(meta.version));
  BALLAST_CHECK(check_expiry(t.env, start_, what));
  BALLAST_CHECK(write_state(state_file, bytes));
  return (targets_[role] = std::make_unique<Targets>(std::move(t))).get();
}

Result<TargetInfo> Client::target(const std::string& name) {
  if (!refreshed_) return fail("tuf.not-refreshed", "refresh() has not succeeded");
  struct Visit {
    std::string role;
    std::string parent;
  };
  std::vector<Visit> stack{{"targets", ""}};
  std::set<std::string> visited;
  unsigned count = 0;
  while (!stack.empty() && count < options_.max_delegations) {
    Visit v = std::move(stack.back());
    stack.pop_back();
    if (!visited.insert(v.role).second) continue;
    ++count;
    const Targets* t = nullptr;
    if (v.role == "targets") {
      t = targets_.at("targets").get();
    } else {
      const auto& parent = *targets_.at(v.parent);
      const auto& roles = parent.delegations->roles;
      auto r = std::find_if(roles.begin(), roles.end(), [&](const DelegatedRole& d) { return d.name == v.role; });
      t = BALLAST_TRY(load_targets_role(v.role, parent.delegations->keys, r->keys));
    }
    if (auto it = t->targets.find(name); it != t->targets.end()) return it->second;
    if (!t->delegations) continue;
    std::vector<Visit> children;
    bool terminated = false;
    for (const auto& d : t->delegations->roles) {
      if (!d.matches(name)) continue;
      children.push_back({d.name, v.role});
      if (d.terminating) {
        terminated = true;
        break;
      }
    }
    // A matching terminating role ends the search once its subtree is done.
    if (terminated) stack.clear();
    stack.insert(stack.end(), children.rbegin(), children.rend());
  }
  return fail("tuf.unknown-target", "no trusted targets role lists '" + name + "'");
}

Result<std::vector<std::string>> Client::all_target_names() {
  std::set<std::string> names;
  std::vector<std::pair<std::string, std::string>> stack{{"targets", ""}};
  std::set<std::string> visited;
  unsigned count = 0;
  while (!stack.empty() && count < options_.max_delegations) {
    // Plain variables, not a structured binding: clang 14 cannot capture those in a lambda.
    const std::string role = stack.back().first, parent = stack.back().second;
    stack.pop_back();
    if (!visited.insert(role).second) continue;
    ++count;
    const Targets* t = nullptr;
    if (role == "targets") {
      t = targets_.at("targets").get();
    } else {
      const auto& p = *targets_.at(parent);
      const auto& roles = p.delegations->roles;
      auto r = std::find_if(roles.begin(), roles.end(), [&](const DelegatedRole& d) { return d.name == role; });
      auto loaded = load_targets_role(role, p.delegations->keys, r->keys);
      // A role the snapshot does not list resolves no target (a lookup in its paths fails with
      // tuf.missing-role); the listing is of what resolves, like names outside a role's paths.
      if (!loaded && loaded.error().code == "tuf.missing-role") continue;
      t = BALLAST_TRY(std::move(loaded));
    }
    for (const auto& [n, _] : t->targets) names.insert(n);
    if (t->delegations)
      for (auto it = t->delegations->roles.rbegin(); it != t->delegations->roles.rend(); ++it)
        stack.push_back({it->name, role});
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::vector<TargetInfo>> Client::targets() {
  if (!refreshed_) return fail("tuf.not-refreshed", "refresh() has not succeeded");
  std::vector<TargetInfo> out;
  for (const auto& name : BALLAST_TRY(all_target_names())) {
    // A name a delegated role lists outside the paths it is trusted for resolves to nothing.
    auto info = target(name);
    if (info) out.push_back(std::move(*info));
    else if (info.error().code != "tuf.unknown-target") return tl::unexpected(std::move(info.error()));
  }
  return out;
}

std::string Client::target_url(const TargetInfo& info) const {
  if (!root_ || !root_->consistent_snapshot) return targets_base_ + "/" + info.name;
  auto slash = info.name.rfind('/');
  std::string dir = slash == std::string::npos ? "" : info.name.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? info.name : info.name.substr(slash + 1);
  auto h = info.hashes.count("sha256") ? info.hashes.at("sha256") : info.hashes.begin()->second;
  return targets_base_ + "/" + dir + h + "." + base;
}

Result<std::string> Client::download_target(const std::string& name, uint64_t max_bytes, std::string local_copy) {
  auto info = BALLAST_TRY(target(name));
  if (info.length > max_bytes)
    return fail("tuf.too-large", name + " is " + std::to_string(info.length) + " bytes, more than the allowed " +
                                     std::to_string(max_bytes));
  if (local_copy.empty() && !options_.target_cache_dir.empty())
    local_copy = path_join(options_.target_cache_dir, escape_role(name));
  if (!local_copy.empty()) {
    if (auto have = read_file(local_copy, info.length + 1);
        have && check_length_and_hashes(*have, info.length, info.hashes, "local copy of " + name))
      return std::move(*have);
  }
  auto resp = http_->get(target_url(info), info.length);
  if (!resp) {
    if (resp.error().code == "http.too-large")
      return fail("tuf.length-mismatch", name + " is longer than the " + std::to_string(info.length) + " bytes listed");
    return tl::unexpected(std::move(resp.error()));
  }
  BALLAST_CHECK(check_length_and_hashes(resp->body, info.length, info.hashes, "target " + name));
  if (!local_copy.empty()) {
    if (auto slash = local_copy.rfind('/'); slash != std::string::npos && slash > 0)
      BALLAST_CHECK(make_dirs(local_copy.substr(0, slash), 0700));
    BALLAST_CHECK(write_file_atomic(local_copy, resp->body));
  }
  return std::move(resp->body);
}

std::string trusted_metadata_dir(const std::string& state_dir) { return path_join(state_dir, "tuf"); }

Result<Client> open_repository(const std::string& state_dir, HttpClient& http, const Clock& clock,
                               const std::string& repo_url, ClientOptions options,
                               const std::string& targets_base_url) {
  return Client::open(trusted_metadata_dir(state_dir), http, clock, layout::metadata_dir(repo_url),
                      targets_base_url.empty() ? layout::targets_dir(repo_url) : targets_base_url, options);
}

uint64_t Client::root_version() const { return root_ ? root_->env.version : 0; }
uint64_t Client::timestamp_version() const { return timestamp_ ? timestamp_->env.version : 0; }
uint64_t Client::snapshot_version() const { return snapshot_ ? snapshot_->env.version : 0; }
uint64_t Client::targets_version() const {
  auto it = targets_.find("targets");
  return it == targets_.end() ? 0 : it->second->env.version;
}

}  // namespace ballast::repository::tuf
