#include "repository/manifest.hpp"

#include <algorithm>
#include <ctime>
#include <set>
#include <vector>

namespace ballast::repository {

namespace {

using json = nlohmann::json;

tl::unexpected<Error> invalid(const std::string& where, const std::string& what) {
  return fail("manifest.invalid", where + ": " + what);
}

// nlohmann keeps the last of duplicate keys silently; a signed document must mean one thing,
// so duplicates are refused, as is nesting deeper than any valid document needs.
Result<json> parse_strict(std::string_view text, const std::string& what) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  bool too_deep = false;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
    if (depth > 8) too_deep = true;
    switch (ev) {
      case json::parse_event_t::object_start: keys.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default: break;
    }
    return !too_deep;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (too_deep) return invalid(what, "nested too deeply");
  if (j.is_discarded()) return invalid(what, "not valid JSON");
  if (!duplicate.empty()) return invalid(what, "duplicate key \"" + duplicate + "\"");
  return j;
}

Status only_keys(const json& obj, const std::string& where, std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : obj.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || k == a;
    if (!known) return invalid(where, "unknown key \"" + k + "\"");
  }
  return ok();
}

Result<const json*> member(const json& obj, const std::string& where, const char* key, bool required = true) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return invalid(where, std::string("missing \"") + key + "\"");
    return static_cast<const json*>(nullptr);
  }
  return &*it;
}

Result<uint64_t> get_uint(const json& obj, const std::string& where, const char* key, uint64_t min,
                          uint64_t max) {
  const json* v = BALLAST_TRY(member(obj, where, key));
  if (!v->is_number_unsigned()) return invalid(where + "." + key, "must be a non-negative integer");
  uint64_t n = v->get<uint64_t>();
  if (n < min || n > max)
    return invalid(where + "." + key, std::to_string(n) + " is outside " + std::to_string(min) + ".." +
                                          std::to_string(max));
  return n;
}

Result<std::string> get_string(const json& obj, const std::string& where, const char* key, size_t max_len,
                               bool required = true) {
  const json* v = BALLAST_TRY(member(obj, where, key, required));
  if (!v) return std::string();
  if (!v->is_string()) return invalid(where + "." + key, "must be a string");
  std::string s = v->get<std::string>();
  if (s.size() > max_len) return invalid(where + "." + key, "longer than " + std::to_string(max_len));
  return s;
}

Result<bool> get_bool(const json& obj, const std::string& where, const char* key) {
  const json* v = BALLAST_TRY(member(obj, where, key, false));
  if (!v) return false;
  if (!v->is_boolean()) return invalid(where + "." + key, "must be true or false");
  return v->get<bool>();
}

// A channel is a name, not a version, but the same characters keep it a safe word.
bool valid_channel(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '+' || c == '~' || c == '-'))
      return false;
  return s != "." && s != "..";
}

bool valid_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  }
  return true;
}

Result<Artifact> parse_artifact(const json& a, const std::string& where) {
  if (!a.is_object()) return invalid(where, "must be an object");
  BALLAST_CHECK(only_keys(a, where, {"from", "parent_uuid", "chunks", "history", "size", "usize"}));
  Artifact art;
  if (a.contains("from"))
    art.from = BALLAST_TRY(with_context(Version::parse(BALLAST_TRY(get_string(a, where, "from", 64))), where + ".from"));
  art.parent_uuid = BALLAST_TRY(get_string(a, where, "parent_uuid", 36, false));
  if (a.contains("parent_uuid")) {
    if (art.is_full()) return invalid(where + ".parent_uuid", "only a delta has a parent");
    if (!valid_uuid(art.parent_uuid)) return invalid(where + ".parent_uuid", "not a lowercase UUID");
  }
  if (a.contains("history")) art.history = BALLAST_TRY(get_uint(a, where, "history", 1, kMaxChunkBytes));
  art.size = BALLAST_TRY(get_uint(a, where, "size", 1, kMaxStreamBytes));
  art.usize = BALLAST_TRY(get_uint(a, where, "usize", 1, kMaxStreamBytes));
  const json* chunks = BALLAST_TRY(member(a, where, "chunks"));
  if (!chunks->is_array() || chunks->empty()) return invalid(where + ".chunks", "must be a non-empty array");
  if (chunks->size() > kMaxChunksPerArtifact) return invalid(where + ".chunks", "too many chunks");
  uint64_t size = 0, usize = 0;
  art.chunks.reserve(chunks->size());
  for (size_t i = 0; i < chunks->size(); ++i) {
    const json& c = (*chunks)[i];
    std::string cw = where + ".chunks[" + std::to_string(i) + "]";
    if (!c.is_object()) return invalid(cw, "must be an object");
    BALLAST_CHECK(only_keys(c, cw, {"sha256", "size", "usize"}));
    ChunkRef ref;
    ref.sha256 = BALLAST_TRY(get_string(c, cw, "sha256", 64));
    if (!valid_sha256_hex(ref.sha256)) return invalid(cw + ".sha256", "not 64 lowercase hex digits");
    ref.size = BALLAST_TRY(get_uint(c, cw, "size", 1, kMaxChunkBytes));
    ref.usize = BALLAST_TRY(get_uint(c, cw, "usize", 1, kMaxChunkBytes));
    size += ref.size;
    usize += ref.usize;
    art.chunks.push_back(std::move(ref));
  }
  if (size != art.size) return invalid(where + ".size", "does not equal the sum of its chunks' sizes");
  if (usize != art.usize) return invalid(where + ".usize", "does not equal the sum of its chunks' usizes");
  return art;
}

std::string format_rfc3339(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int64_t> parse_rfc3339(const std::string& s, const std::string& where) {
  struct tm tm {};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') return invalid(where, "not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

const Artifact* Manifest::full() const {
  for (const auto& a : artifacts)
    if (a.is_full()) return &a;
  return nullptr;
}

const Artifact* Manifest::delta_from(const Version& v) const {
  for (const auto& a : artifacts)
    if (a.from == v) return &a;
  return nullptr;
}

Result<MeasuredBoot> parse_measured_boot(const json& mb, const std::string& where) {
  if (!mb.is_object()) return invalid(where, "must be an object");
  BALLAST_CHECK(only_keys(mb, where, {"pcr11_sha256"}));
  const json* pcrs = BALLAST_TRY(member(mb, where, "pcr11_sha256"));
  if (!pcrs->is_object() || pcrs->empty() || pcrs->size() > 64)
    return invalid(where + ".pcr11_sha256", "must be an object of 1 to 64 phases");
  MeasuredBoot out;
  for (const auto& [phase, value] : pcrs->items()) {
    bool phase_ok = phase.size() <= 256;
    for (char c : phase) phase_ok = phase_ok && ((c >= 'a' && c <= 'z') || c == '-' || c == ':');
    if (!phase_ok) return invalid(where + ".pcr11_sha256", "bad phase \"" + phase + "\"");
    if (!value.is_string() || !valid_sha256_hex(value.get<std::string>()))
      return invalid(where + ".pcr11_sha256." + phase, "not 64 lowercase hex digits");
    out.pcr11_sha256[phase] = value.get<std::string>();
  }
  return out;
}

json measured_boot_json(const MeasuredBoot& mb) { return {{"pcr11_sha256", mb.pcr11_sha256}}; }

Result<Manifest> parse_manifest(std::string_view text) {
  if (text.size() > kMaxManifestBytes) return invalid("manifest", "larger than " + std::to_string(kMaxManifestBytes) + " bytes");
  json j = BALLAST_TRY(parse_strict(text, "manifest"));
  if (!j.is_object()) return invalid("manifest", "must be a JSON object");
  BALLAST_CHECK(only_keys(j, "manifest", {"schema", "version", "artifacts", "measured_boot"}));
  uint64_t schema = BALLAST_TRY(get_uint(j, "manifest", "schema", 0, 1u << 20));
  if (schema != Manifest::kSchema)
    return fail("manifest.unsupported", "manifest schema " + std::to_string(schema) + " is not supported (expected " +
                                            std::to_string(Manifest::kSchema) + ")");
  Manifest m;
  m.version = BALLAST_TRY(with_context(Version::parse(BALLAST_TRY(get_string(j, "manifest", "version", 64))),
                                      "manifest.version"));
  const json* arts = BALLAST_TRY(member(j, "manifest", "artifacts"));
  if (!arts->is_array() || arts->empty()) return invalid("manifest.artifacts", "must be a non-empty array");
  if (arts->size() > kMaxArtifacts) return invalid("manifest.artifacts", "too many artifacts");
  std::set<std::string> froms;  // "" for the full stream
  for (size_t i = 0; i < arts->size(); ++i) {
    std::string where = "manifest.artifacts[" + std::to_string(i) + "]";
    Artifact a = BALLAST_TRY(parse_artifact((*arts)[i], where));
    if (!froms.insert(a.from ? a.from->str() : "").second)
      return invalid(where, a.from ? "a second delta from " + a.from->str() : "a second full stream");
    if (a.from == m.version) return invalid(where + ".from", "a delta from the release itself");
    m.artifacts.push_back(std::move(a));
  }
  if (const json* mb = BALLAST_TRY(member(j, "manifest", "measured_boot", false)))
    m.measured_boot = BALLAST_TRY(parse_measured_boot(*mb, "manifest.measured_boot"));
  return m;
}

std::string serialize_manifest(const Manifest& m) {
  json arts = json::array();
  for (const auto& a : m.artifacts) {
    json chunks = json::array();
    for (const auto& c : a.chunks) chunks.push_back({{"sha256", c.sha256}, {"size", c.size}, {"usize", c.usize}});
    json ja{{"chunks", std::move(chunks)}, {"size", a.size}, {"usize", a.usize}};
    if (a.from) ja["from"] = a.from->str();
    if (!a.parent_uuid.empty()) ja["parent_uuid"] = a.parent_uuid;
    if (a.history) ja["history"] = a.history;
    arts.push_back(std::move(ja));
  }
  json j{{"schema", Manifest::kSchema}, {"version", m.version.str()}, {"artifacts", std::move(arts)}};
  if (m.measured_boot) j["measured_boot"] = measured_boot_json(*m.measured_boot);
  return j.dump();
}

Result<ReleaseInfo> parse_release_info(const json& custom) {
  const std::string where = "release";
  if (!custom.is_object()) return invalid(where, "custom data must be an object");
  BALLAST_CHECK(only_keys(custom, where, {"version", "channel", "os_release", "cmdline", "rollout", "barrier", "revoked"}));
  ReleaseInfo info;
  info.version =
      BALLAST_TRY(with_context(Version::parse(BALLAST_TRY(get_string(custom, where, "version", 64))), where + ".version"));
  if (custom.contains("channel")) {
    info.channel = BALLAST_TRY(get_string(custom, where, "channel", 64));
    if (!valid_channel(info.channel)) return invalid(where + ".channel", "not a valid channel name");
  }
  if (const json* os = BALLAST_TRY(member(custom, where, "os_release", false))) {
    if (!os->is_object()) return invalid(where + ".os_release", "must be an object");
    if (os->size() > 256) return invalid(where + ".os_release", "too many fields");
    for (const auto& [k, v] : os->items()) {
      bool key_ok = !k.empty() && k.size() <= 64;
      for (char c : k) key_ok = key_ok && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
      if (!key_ok) return invalid(where + ".os_release", "bad field name \"" + k + "\"");
      if (!v.is_string() || v.get<std::string>().size() > 4096)
        return invalid(where + ".os_release." + k, "must be a string of at most 4096 bytes");
      info.os_release[k] = v.get<std::string>();
    }
  }
  info.cmdline = BALLAST_TRY(get_string(custom, where, "cmdline", 4096, false));
  for (char c : info.cmdline)
    if (c == '\n' || c == '\0') return invalid(where + ".cmdline", "contains a newline or NUL");
  if (const json* r = BALLAST_TRY(member(custom, where, "rollout", false))) {
    std::string rw = where + ".rollout";
    if (!r->is_object()) return invalid(rw, "must be an object");
    BALLAST_CHECK(only_keys(*r, rw, {"start", "duration"}));
    Rollout ro;
    ro.start = BALLAST_TRY(parse_rfc3339(BALLAST_TRY(get_string(*r, rw, "start", 32)), rw + ".start"));
    ro.duration = static_cast<int64_t>(BALLAST_TRY(get_uint(*r, rw, "duration", 0, 10ull * 365 * 86400)));
    info.rollout = ro;
  }
  info.barrier = BALLAST_TRY(get_bool(custom, where, "barrier"));
  info.revoked = BALLAST_TRY(get_bool(custom, where, "revoked"));
  return info;
}

json release_info_json(const ReleaseInfo& info) {
  json j{{"version", info.version.str()}, {"channel", info.channel}, {"barrier", info.barrier}, {"revoked", info.revoked}};
  if (!info.os_release.empty()) j["os_release"] = info.os_release;
  if (!info.cmdline.empty()) j["cmdline"] = info.cmdline;
  if (info.rollout) j["rollout"] = {{"start", format_rfc3339(info.rollout->start)}, {"duration", static_cast<uint64_t>(info.rollout->duration)}};
  return j;
}

std::vector<Manifest> chain_window(const std::vector<ReleaseInfo>& releases, const Version& target, bool target_has_full,
                                   const std::optional<Version>& oldest_slot,
                                   const std::function<Result<Manifest>(const ReleaseInfo&)>& load,
                                   const std::function<void(const ReleaseInfo&, const Error&)>& skipped) {
  std::vector<const ReleaseInfo*> older;
  for (const auto& r : releases)
    if (!r.revoked && r.version < target) older.push_back(&r);
  std::sort(older.begin(), older.end(), [](const auto* a, const auto* b) { return a->version > b->version; });
  std::vector<Manifest> out;
  bool have_full = oldest_slot && target_has_full;
  for (const auto* r : older) {
    const bool above_slots = oldest_slot && r->version > *oldest_slot;
    if (!above_slots && have_full) break;
    auto m = load(*r);
    if (!m) {
      skipped(*r, m.error());
      continue;
    }
    if (m->full()) have_full = true;
    out.push_back(std::move(*m));
  }
  return out;
}

std::string manifest_target_name(const Version& version) {
  return "releases/" + version.str() + "/manifest.json";
}

std::string chunk_path(std::string_view sha256) { return "chunks/" + std::string(sha256); }

bool valid_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace ballast::repository
