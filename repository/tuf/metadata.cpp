#include "repository/tuf/metadata.hpp"

#include <fnmatch.h>

#include <ctime>
#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

#include "common/clock.hpp"
#include "repository/tuf/canonical_json.hpp"

namespace ballast::repository::tuf {
namespace {

using json = nlohmann::json;

// Shape errors are thrown inside this file only and turned into "tuf.bad-metadata" at the
// parse_* boundary: it keeps each field check to one line.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json& field(const json& obj, const char* name) {
  if (!obj.is_object()) throw Malformed("expected an object around '" + std::string(name) + "'");
  auto it = obj.find(name);
  if (it == obj.end()) throw Malformed(std::string("missing '") + name + "'");
  return *it;
}
std::string str(const json& obj, const char* name) {
  const auto& v = field(obj, name);
  if (!v.is_string()) throw Malformed(std::string("'") + name + "' is not a string");
  return v.get<std::string>();
}
uint64_t uint(const json& obj, const char* name) {
  const auto& v = field(obj, name);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    throw Malformed(std::string("'") + name + "' is not a non-negative integer");
  return v.get<uint64_t>();
}
const json& obj_field(const json& obj, const char* name) {
  const auto& v = field(obj, name);
  if (!v.is_object()) throw Malformed(std::string("'") + name + "' is not an object");
  return v;
}
std::vector<std::string> str_list(const json& v, const char* what) {
  if (!v.is_array()) throw Malformed(std::string("'") + what + "' is not a list");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) throw Malformed(std::string("'") + what + "' holds a non-string");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> hashes_of(const json& v) {
  if (!v.is_object() || v.empty()) throw Malformed("'hashes' is not a non-empty object");
  std::map<std::string, std::string> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it->is_string()) throw Malformed("hash is not a string");
    out[it.key()] = it->get<std::string>();
  }
  return out;
}

MetaFile meta_file_of(const json& v) {
  MetaFile m;
  m.version = uint(v, "version");
  if (m.version == 0) throw Malformed("meta version 0");
  if (v.contains("length")) m.length = uint(v, "length");
  if (v.contains("hashes")) m.hashes = hashes_of(v["hashes"]);
  return m;
}

std::map<std::string, PublicKey> keys_of(const json& v) {
  if (!v.is_object()) throw Malformed("'keys' is not an object");
  std::map<std::string, PublicKey> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    auto k = PublicKey::from_json(*it);
    if (!k) throw Malformed("key " + it.key() + ": " + k.error().message);
    out.emplace(it.key(), std::move(*k));
  }
  return out;
}

RoleKeys role_keys_of(const json& v) {
  RoleKeys r;
  r.keyids = str_list(field(v, "keyids"), "keyids");
  r.threshold = uint(v, "threshold");
  if (r.threshold == 0) throw Malformed("threshold 0");
  std::set<std::string> unique(r.keyids.begin(), r.keyids.end());
  if (unique.size() != r.keyids.size()) throw Malformed("a key id is listed twice");
  return r;
}

Envelope envelope_of(std::string_view bytes, const char* expected_type) {
  json doc = json::parse(bytes.begin(), bytes.end());  // throws on syntax errors
  Envelope env;
  env.signed_json = obj_field(doc, "signed");
  const auto& sigs = field(doc, "signatures");
  if (!sigs.is_array()) throw Malformed("'signatures' is not a list");
  std::set<std::string> signed_by;
  for (const auto& s : sigs) {
    auto raw = from_hex(str(s, "sig"));
    if (!raw) throw Malformed("signature is not hex");
    auto keyid = str(s, "keyid");
    // The specification allows one signature per key id; a repeated id is malformed metadata
    // whatever the threshold, not merely a signature that does not count twice.
    if (!signed_by.insert(keyid).second) throw Malformed("'signatures' lists key id " + keyid + " twice");
    env.signatures.push_back({std::move(keyid), std::move(*raw)});
  }
  auto canon = canonical_json(env.signed_json);
  if (!canon) throw Malformed(canon.error().message);
  env.canonical = std::move(*canon);
  const json& sj = env.signed_json;
  env.type = str(sj, "_type");
  if (env.type != expected_type) throw Malformed("'_type' is '" + env.type + "', expected '" + expected_type + "'");
  auto spec = str(sj, "spec_version");
  if (spec.substr(0, spec.find('.')) != "1") throw Malformed("unsupported spec_version " + spec);
  env.version = uint(sj, "version");
  if (env.version == 0) throw Malformed("version 0");
  auto t = parse_time(str(sj, "expires"));
  if (!t) throw Malformed(t.error().message);
  env.expires = *t;
  return env;
}

template <class F>
auto guarded(const char* what, F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const Malformed& e) {
    return fail("tuf.bad-metadata", std::string(what) + ": " + e.what());
  } catch (const json::exception& e) {
    return fail("tuf.bad-metadata", std::string(what) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return fail("tuf.too-large", std::string(what) + ": out of memory parsing");
  }
}

bool pattern_matches(const std::string& pattern, const std::string& target) {
  // fnmatch with FNM_PATHNAME: '*' and '?' never match '/', so "releases/*" does not
  // reach into "releases/1/manifest.json" — delegations stay within their directory.
  return fnmatch(pattern.c_str(), target.c_str(), FNM_PATHNAME) == 0;
}

}  // namespace

bool DelegatedRole::matches(const std::string& target) const {
  if (paths) {
    for (const auto& p : *paths)
      if (pattern_matches(p, target)) return true;
    return false;
  }
  if (path_hash_prefixes) {
    auto h = sha256_hex(target);
    for (const auto& p : *path_hash_prefixes)
      if (h.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

Result<TimePoint> parse_time(const std::string& s) {
  // Exactly YYYY-MM-DDTHH:MM:SSZ.
  static const char* shape = "dddd-dd-ddTdd:dd:ddZ";
  if (s.size() != 20) return fail("tuf.bad-metadata", "time '" + s + "' is not YYYY-MM-DDTHH:MM:SSZ");
  for (size_t i = 0; i < 20; ++i) {
    bool good = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
    if (!good) return fail("tuf.bad-metadata", "time '" + s + "' is not YYYY-MM-DDTHH:MM:SSZ");
  }
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(8, 2));
  tm.tm_hour = std::stoi(s.substr(11, 2));
  tm.tm_min = std::stoi(s.substr(14, 2));
  tm.tm_sec = std::stoi(s.substr(17, 2));
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return fail("tuf.bad-metadata", "time '" + s + "' out of range");
  // The format reaches 9999, the clock 2262: "expires 9999" means never.
  return time_point_of_unix_seconds(timegm(&tm));
}

std::string format_time(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<Root> parse_root(std::string_view bytes) {
  return guarded("root metadata", [&] {
    Root r;
    r.env = envelope_of(bytes, "root");
    const json& sj = r.env.signed_json;
    const auto& cs = field(sj, "consistent_snapshot");
    if (!cs.is_boolean()) throw Malformed("'consistent_snapshot' is not a boolean");
    r.consistent_snapshot = cs.get<bool>();
    r.keys = keys_of(field(sj, "keys"));
    const auto& roles = obj_field(sj, "roles");
    for (const char* name : {"root", "timestamp", "snapshot", "targets"}) r.roles[name] = role_keys_of(field(roles, name));
    return r;
  });
}

Result<Timestamp> parse_timestamp(std::string_view bytes) {
  return guarded("timestamp metadata", [&] {
    Timestamp t;
    t.env = envelope_of(bytes, "timestamp");
    const auto& meta = obj_field(t.env.signed_json, "meta");
    if (meta.size() != 1) throw Malformed("'meta' must list exactly snapshot.json");
    t.snapshot = meta_file_of(field(meta, "snapshot.json"));
    return t;
  });
}

Result<Snapshot> parse_snapshot(std::string_view bytes) {
  return guarded("snapshot metadata", [&] {
    Snapshot s;
    s.env = envelope_of(bytes, "snapshot");
    const auto& meta = obj_field(s.env.signed_json, "meta");
    for (auto it = meta.begin(); it != meta.end(); ++it) s.meta[it.key()] = meta_file_of(*it);
    if (!s.meta.count("targets.json")) throw Malformed("'meta' does not list targets.json");
    return s;
  });
}

Result<Targets> parse_targets(std::string_view bytes) {
  return guarded("targets metadata", [&] {
    Targets t;
    t.env = envelope_of(bytes, "targets");
    const json& sj = t.env.signed_json;
    const auto& targets = obj_field(sj, "targets");
    for (auto it = targets.begin(); it != targets.end(); ++it) {
      TargetInfo info;
      info.name = it.key();
      info.length = uint(*it, "length");
      info.hashes = hashes_of(field(*it, "hashes"));
      if (it->contains("custom")) info.custom = (*it)["custom"];
      t.targets.emplace(info.name, std::move(info));
    }
    if (sj.contains("delegations")) {
      const auto& d = obj_field(sj, "delegations");
      Delegations dl;
      dl.keys = keys_of(field(d, "keys"));
      const auto& roles = field(d, "roles");
      if (!roles.is_array()) throw Malformed("'delegations.roles' is not a list");
      std::set<std::string> names;
      for (const auto& r : roles) {
        DelegatedRole role;
        role.name = str(r, "name");
        if (role.name.empty() || !names.insert(role.name).second) throw Malformed("delegated role name empty or repeated");
        if (role.name == "root" || role.name == "timestamp" || role.name == "snapshot" || role.name == "targets")
          throw Malformed("delegated role uses a top-level role name");
        role.keys = role_keys_of(r);
        if (r.contains("terminating")) {
          if (!r["terminating"].is_boolean()) throw Malformed("'terminating' is not a boolean");
          role.terminating = r["terminating"].get<bool>();
        }
        if (r.contains("paths")) role.paths = str_list(r["paths"], "paths");
        if (r.contains("path_hash_prefixes")) role.path_hash_prefixes = str_list(r["path_hash_prefixes"], "path_hash_prefixes");
        if (role.paths && role.path_hash_prefixes) throw Malformed("role has both paths and path_hash_prefixes");
        dl.roles.push_back(std::move(role));
      }
      t.delegations = std::move(dl);
    }
    return t;
  });
}

Status verify_threshold(const Envelope& env, const std::map<std::string, PublicKey>& keys, const RoleKeys& role,
                        const std::string& what) {
  std::set<std::string> counted_ids, counted_keys;
  bool bad = false;
  for (const auto& sig : env.signatures) {
    if (std::find(role.keyids.begin(), role.keyids.end(), sig.keyid) == role.keyids.end()) continue;
    auto k = keys.find(sig.keyid);
    if (k == keys.end()) continue;
    // The same key listed under two ids must not count twice towards the threshold.
    std::string material = k->second.keytype + "\n" + k->second.public_value;
    if (counted_ids.count(sig.keyid) || counted_keys.count(material)) continue;
    if (!k->second.verify(env.canonical, sig.sig)) {
      bad = true;
      continue;
    }
    counted_ids.insert(sig.keyid);
    counted_keys.insert(material);
  }
  if (counted_ids.size() >= role.threshold) return ok();
  std::string counts = std::to_string(counted_ids.size()) + " of threshold " + std::to_string(role.threshold);
  if (bad) return fail("tuf.bad-signature", what + ": a signature does not verify (" + counts + " valid)");
  return fail("tuf.threshold", what + ": signatures below threshold (" + counts + " valid)");
}

Status check_expiry(const Envelope& env, TimePoint start, const std::string& what) {
  if (start >= env.expires) return fail("tuf.expired", what + " expired at " + format_time(env.expires) + " (freeze attack?)");
  return ok();
}

Status check_length_and_hashes(std::string_view bytes, std::optional<uint64_t> length,
                               const std::map<std::string, std::string>& hashes, const std::string& what) {
  if (length && bytes.size() != *length)
    return fail("tuf.length-mismatch", what + ": " + std::to_string(bytes.size()) + " bytes, expected " +
                                           std::to_string(*length));
  bool any = false;
  for (const auto& [alg, expected] : hashes) {
    auto got = digest_hex(alg, bytes);
    if (!got) continue;  // an algorithm we do not know is skipped if another one is checked
    any = true;
    std::string lower = expected;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (*got != lower) return fail("tuf.hash-mismatch", what + ": " + alg + " does not match");
  }
  if (!hashes.empty() && !any) return fail("tuf.unsupported", what + ": no supported hash algorithm");
  return ok();
}

Result<std::string> sign_metadata(const nlohmann::json& signed_json, const std::vector<const PrivateKey*>& keys) {
  auto canon = BALLAST_TRY(canonical_json(signed_json));
  json sigs = json::array();
  for (const auto* k : keys) {
    auto sig = BALLAST_TRY(k->sign(canon));
    sigs.push_back({{"keyid", k->key_id()}, {"sig", to_hex(sig)}});
  }
  json doc{{"signatures", sigs}, {"signed", signed_json}};
  return doc.dump(1) + "\n";
}

nlohmann::json meta_file_json(const MetaFile& m) {
  json j{{"version", m.version}};
  if (m.length) j["length"] = *m.length;
  if (!m.hashes.empty()) j["hashes"] = m.hashes;
  return j;
}

nlohmann::json target_info_json(const TargetInfo& t) {
  json j{{"length", t.length}, {"hashes", t.hashes}};
  if (!t.custom.is_null()) j["custom"] = t.custom;
  return j;
}

}  // namespace ballast::repository::tuf
