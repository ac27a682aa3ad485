// TUF metadata (specification 1.0.x): parsing with strict shape checks, signature thresholds,
// expiry, and the signing of new metadata for the publisher. Everything that is signed is the
// OLPC canonical form of the "signed" object, recomputed from the parsed value, so the bytes
// verified are exactly the values used.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "repository/tuf/crypto.hpp"

namespace ballast::repository::tuf {

using TimePoint = std::chrono::system_clock::time_point;

// A target as the targets metadata (top-level or delegated) describes it.
struct TargetInfo {
  std::string name;
  uint64_t length = 0;
  std::map<std::string, std::string> hashes;  // algorithm → lowercase hex
  nlohmann::json custom;                      // null when absent
};

// What a role says about another metadata file (timestamp → snapshot, snapshot → targets roles).
struct MetaFile {
  uint64_t version = 0;
  std::optional<uint64_t> length;
  std::map<std::string, std::string> hashes;
};

struct RoleKeys {
  std::vector<std::string> keyids;
  uint64_t threshold = 1;
};

struct Signature {
  std::string keyid;
  std::string sig;  // raw bytes (hex in the file)
};

// The envelope every metadata file shares.
struct Envelope {
  nlohmann::json signed_json;
  std::string canonical;  // canonical JSON of signed_json: the signed bytes
  std::vector<Signature> signatures;
  std::string type;       // "_type": root, timestamp, snapshot, targets
  uint64_t version = 0;
  TimePoint expires;
};

struct Root {
  Envelope env;
  bool consistent_snapshot = false;
  std::map<std::string, PublicKey> keys;   // keyid → key
  std::map<std::string, RoleKeys> roles;   // root, timestamp, snapshot, targets
};

struct Timestamp {
  Envelope env;
  MetaFile snapshot;
};

struct Snapshot {
  Envelope env;
  std::map<std::string, MetaFile> meta;  // "targets.json", "<delegated>.json" → what was published
};

struct DelegatedRole {
  std::string name;
  RoleKeys keys;
  bool terminating = false;
  std::optional<std::vector<std::string>> paths;
  std::optional<std::vector<std::string>> path_hash_prefixes;
  // Whether this role is trusted for `target`: a path pattern matches it segment by segment
  // ('*' never crosses '/'), or the sha256 of its name starts with one of the prefixes.
  bool matches(const std::string& target) const;
};

struct Delegations {
  std::map<std::string, PublicKey> keys;
  std::vector<DelegatedRole> roles;  // in priority order
};

struct Targets {
  Envelope env;
  std::map<std::string, TargetInfo> targets;
  std::optional<Delegations> delegations;
};

// Parsers. Any deviation from the expected shape is "tuf.bad-metadata"; a "_type" other than
// `expected_type` is "tuf.bad-metadata" too (a timestamp served as a snapshot is not a snapshot).
Result<Root> parse_root(std::string_view bytes);
Result<Timestamp> parse_timestamp(std::string_view bytes);
Result<Snapshot> parse_snapshot(std::string_view bytes);
Result<Targets> parse_targets(std::string_view bytes);

// Counts valid signatures of distinct keys among `role.keyids` and fails unless they reach
// the threshold: "tuf.bad-signature" when a signature by an authorised key does not verify
// and the threshold is missed, else "tuf.threshold". `what` names the metadata in the message.
Status verify_threshold(const Envelope& env, const std::map<std::string, PublicKey>& keys, const RoleKeys& role,
                        const std::string& what);

// "tuf.expired" when `start` is at or past the metadata's expiry.
Status check_expiry(const Envelope& env, TimePoint start, const std::string& what);

// Exact length (when given) and every listed hash: "tuf.length-mismatch" / "tuf.hash-mismatch".
Status check_length_and_hashes(std::string_view bytes, std::optional<uint64_t> length,
                               const std::map<std::string, std::string>& hashes, const std::string& what);

// "2030-01-01T00:00:00Z" ⇄ time point (whole seconds, UTC, the only form the spec uses).
Result<TimePoint> parse_time(const std::string& s);
std::string format_time(TimePoint t);

// A metadata file: {"signed": `signed_json`, "signatures": [...]} signed by each key over the
// canonical form. The output is indented JSON; verifiers canonicalise again.
Result<std::string> sign_metadata(const nlohmann::json& signed_json, const std::vector<const PrivateKey*>& keys);

nlohmann::json meta_file_json(const MetaFile& m);
nlohmann::json target_info_json(const TargetInfo& t);

}  // namespace ballast::repository::tuf
