// The TUF client: the detailed client workflow of specification 1.0.x §5 over an HttpClient,
// with trusted metadata kept in a state directory. Every refusal carries a stable code naming
// what was detected: tuf.rollback, tuf.expired (freeze), tuf.mix-and-match, tuf.threshold,
// tuf.bad-signature, tuf.length-mismatch, tuf.hash-mismatch, tuf.too-large (endless data),
// tuf.bad-metadata (malformed), tuf.no-trust (no trusted root yet).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "repository/http.hpp"
#include "repository/tuf/metadata.hpp"

namespace ballast::repository::tuf {

struct ClientOptions {
  uint64_t max_metadata_size = 8 << 20;  // config repository.max_metadata_size; cap when no length is known
  unsigned max_root_rotations = 256;     // root versions fetched in one refresh at most
  unsigned max_delegations = 32;         // targets roles visited in one lookup at most
  // Where download_target keeps verified targets (one file per name); a copy there that still
  // matches the trusted length and hashes is not fetched again. Empty: nothing kept.
  std::string target_cache_dir;
};

class Client {
 public:
  // `state_dir` holds the trusted metadata: root.json, timestamp.json, snapshot.json,
  // targets.json and delegated/<role>.json. It must already hold a trusted root
  // (init_trust), else "tuf.no-trust". Base URLs have no trailing slash needed.
  static Result<Client> open(std::string state_dir, HttpClient& http, const Clock& clock,
                             std::string metadata_base_url, std::string targets_base_url,
                             ClientOptions options = {});

  // Installs the first trusted root (checked to be signed by a threshold of its own keys).
  // A state dir that already trusts a root keeps it: it may have rotated since the anchor
  // shipped, and going back to the anchor would undo that.
  static Status init_trust(const std::string& state_dir, const std::string& root_json_path);

  // Root rotation, then timestamp → snapshot → targets, every check of the specification,
  // against one update start time read once from the clock. Each newly trusted file is
  // persisted atomically as soon as it is verified; a failure leaves the state dir as
  // trustworthy as before, so a later refresh against a repaired repository succeeds.
  Status refresh();

  // The metadata the last refresh left trusted in the state dir, with no network: every file
  // verified again with the trusted keys (and the snapshot and targets against the timestamp's
  // and snapshot's lengths and hashes), unexpired now. What staging uses, so that one update
  // refreshes once and stages exactly what the check saw. "tuf.not-refreshed" when no refresh
  // ever completed.
  Status load_trusted();

  // After refresh: the target as the highest-priority trusted role describes it, walking
  // delegations depth-first in order (terminating roles respected), at most max_delegations
  // roles. "tuf.unknown-target" when no trusted role lists it.
  Result<TargetInfo> target(const std::string& name);
  // Every target reachable through top-level and delegated roles, as target() resolves it.
  Result<std::vector<TargetInfo>> targets();

  // The target's bytes, length and hashes verified; "tuf.too-large" when it exceeds max_bytes.
  // `local_copy` (default: the target's file in options.target_cache_dir, if set): when that
  // file already matches the trusted length and hashes its bytes are returned with no request;
  // otherwise the verified download is written there atomically.
  Result<std::string> download_target(const std::string& name, uint64_t max_bytes, std::string local_copy = "");

  // URL of the target file: with consistent snapshots DIR/<sha256>.BASENAME of the name.
  std::string target_url(const TargetInfo& info) const;

  // Versions of the trusted metadata (0 when not loaded), for status output and tests.
  uint64_t root_version() const;
  uint64_t timestamp_version() const;
  uint64_t snapshot_version() const;
  uint64_t targets_version() const;
  TimePoint update_start() const { return start_; }

 private:
  Client() = default;
  // Forgets the loaded metadata, reads the clock once for the cycle and loads the trusted root.
  Status begin_cycle();
  Status load_trusted_root();
  Status update_root();
  Status update_timestamp();
  Status update_snapshot();
  Result<const Targets*> load_targets_role(const std::string& role, const std::map<std::string, PublicKey>& keys,
                                           const RoleKeys& role_keys);
  Result<std::string> fetch_metadata(const std::string& file, std::optional<uint64_t> length);
  std::optional<std::string> read_state(const std::string& file) const;
  Status write_state(const std::string& file, const std::string& bytes);
  std::string metadata_url(const std::string& file) const;
  // Names of roles whose metadata might list targets, reached from top-level targets.
  Result<std::vector<std::string>> all_target_names();

  std::string state_dir_;
  HttpClient* http_ = nullptr;
  const Clock* clock_ = nullptr;
  std::string metadata_base_;
  std::string targets_base_;
  ClientOptions options_;
  TimePoint start_{};
  bool refreshed_ = false;
  std::unique_ptr<Root> root_;
  std::unique_ptr<Timestamp> timestamp_;
  std::unique_ptr<Snapshot> snapshot_;
  std::map<std::string, std::unique_ptr<Targets>> targets_;  // "targets" and delegated roles loaded
};

// Where the trusted TUF metadata of a host lives below its state directory (D/tuf).
std::string trusted_metadata_dir(const std::string& state_dir);

// A client for the repository at `repo_url`, laid out as `ballast repo` writes it:
// REPO/metadata/ and REPO/targets/; `targets_base_url` replaces REPO/targets for repositories
// whose targets live apart from their metadata (a CDN for targets, for example).
Result<Client> open_repository(const std::string& state_dir, HttpClient& http, const Clock& clock,
                               const std::string& repo_url, ClientOptions options = {},
                               const std::string& targets_base_url = "");

}  // namespace ballast::repository::tuf
