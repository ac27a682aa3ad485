// The publisher side of the TUF repository (`ballast repo`): keys, initial metadata, targets,
// and the chain of new versions targets → snapshot → timestamp on every commit.
//
// Repository directory (served as-is over HTTPS or file://):
//   metadata/N.root.json          every root version (clients walk the chain)
//   metadata/root.json            copy of the newest root
//   metadata/N.targets.json, N.snapshot.json   consistent snapshots
//   metadata/timestamp.json       the only unversioned role file clients fetch
//   targets/DIR/<sha256>.BASE     the target DIR/BASE, content-addressed
//   ballast-repo.json             the publisher's expiry periods (no secrets)
// Key directory: root.pem, targets.pem, snapshot.pem, timestamp.pem, unencrypted PKCS#8 PEM,
// mode 0600, one key per role (threshold 1); see docs/repository.md.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "repository/tuf/crypto.hpp"
#include "repository/tuf/metadata.hpp"

namespace ballast::repository::tuf {

struct Expiries {
  std::chrono::seconds root{std::chrono::hours(24 * 365)};
  std::chrono::seconds targets{std::chrono::hours(24 * 90)};
  std::chrono::seconds snapshot{std::chrono::hours(24 * 7)};
  std::chrono::seconds timestamp{std::chrono::hours(24)};
};

inline constexpr const char* kTopLevelRoles[] = {"root", "targets", "snapshot", "timestamp"};

// Loads KEYDIR/<role>.pem for the four top-level roles; with `create_type`, a missing key
// is generated and written (0600) first. Without it, a missing key is "repo.missing-key" when
// `require_all`, else left out (the root key usually stays offline).
Result<std::map<std::string, PrivateKey>> load_key_dir(const std::string& key_dir,
                                                        std::optional<KeyType> create_type = std::nullopt,
                                                        bool require_all = true);

class RepoWriter {
 public:
  // Creates keys that are absent (of `key_type`) and version 1 of every role, with consistent
  // snapshots. Refuses ("repo.exists") a directory that already has metadata. `clock` defaults
  // to the system clock; it sets the expiry dates.
  static Status init(const std::string& repo_dir, const std::string& key_dir, const Expiries& expiries,
                     KeyType key_type = KeyType::ed25519, const Clock* clock = nullptr);
  // Loads the newest metadata and the keys present in KEYDIR; "repo.wrong-keys" when one of
  // them is not the key the root lists for its role. A role whose key is absent can not be
  // signed ("repo.missing-key" when needed): `repo timestamp` needs only timestamp.pem.
  static Result<RepoWriter> open(const std::string& repo_dir, const std::string& key_dir, const Clock* clock = nullptr);

  // Stores the bytes as targets/DIR/<sha256>.BASE and lists the target (replacing an older
  // one of the same name) in the pending targets metadata; nothing is published before commit().
  // Names are relative paths without empty, "." or ".." components ("repo.bad-target-name").
  Status add_target(const std::string& name, std::string_view bytes, const nlohmann::json& custom = nullptr);
  // Same, from a file anywhere on disk (read whole).
  Status add_target_file(const std::string& name, const std::string& path, const nlohmann::json& custom = nullptr);
  // Replaces a listed target's custom data ("repo.unknown-target" when not listed).
  Status set_custom(const std::string& name, const nlohmann::json& custom);
  Status remove_target(const std::string& name);
  // The stored bytes of a listed target, checked against its listed length and sha256
  // ("repo.unknown-target", "repo.corrupt-target").
  Result<std::string> read_target(const std::string& name) const;
  const std::map<std::string, TargetInfo>& targets() const { return targets_; }

  // Publishes: targets vN+1 (when changed), snapshot vN+1, timestamp vN+1, each signed and
  // written atomically, the timestamp last so a client never sees a half-published version.
  Status commit();
  // `repo timestamp`: a new timestamp version over the same snapshot, with a fresh expiry.
  Status refresh_timestamp();
  // New root version signed by the old and the new root keys; NEWDIR's keys (created when
  // absent, same type as the old root key) replace all four roles, and targets, snapshot and
  // timestamp are re-signed with them. Afterwards the writer signs with NEWDIR.
  Status rotate_root(const std::string& new_key_dir);

  const std::string& repo_dir() const { return repo_dir_; }
  uint64_t root_version() const { return root_version_; }
  uint64_t targets_version() const { return targets_version_; }
  uint64_t snapshot_version() const { return snapshot_version_; }
  uint64_t timestamp_version() const { return timestamp_version_; }

 private:
  RepoWriter() = default;
  TimePoint now() const;
  std::string meta_path(const std::string& file) const;
  Status write_targets();
  Status write_snapshot();
  Status write_timestamp();
  Result<const PrivateKey*> key(const std::string& role) const;
  static nlohmann::json root_json(const std::map<std::string, PrivateKey>& keys, uint64_t version, TimePoint expires);

  std::string repo_dir_;
  std::string key_dir_;
  const Clock* clock_ = nullptr;
  Expiries expiries_;
  std::map<std::string, PrivateKey> keys_;
  uint64_t root_version_ = 0, targets_version_ = 0, snapshot_version_ = 0, timestamp_version_ = 0;
  std::map<std::string, TargetInfo> targets_;
  nlohmann::json delegations_;  // kept as published; the writer does not edit delegations
  std::string snapshot_bytes_;  // the newest snapshot file, for the timestamp's length and hash
  bool dirty_ = false;
};

}  // namespace ballast::repository::tuf
