#include "repository/release.hpp"

#include "common/file.hpp"
#include "common/log.hpp"
#include "repository/http.hpp"
#include "repository/layout.hpp"

namespace ballast::repository {

Result<std::vector<Release>> list_releases(tuf::Client& client) {
  auto targets = BALLAST_TRY(client.targets());
  std::vector<Release> out;
  for (auto& t : targets) {
    if (t.name.rfind("releases/", 0) != 0) continue;
    auto slash = t.name.find('/', 9);
    if (slash == std::string::npos || t.name.substr(slash) != "/manifest.json") continue;
    std::string version = t.name.substr(9, slash - 9);
    // One malformed release must not hide the others: it is skipped (and said so), never chosen.
    auto info = with_context(parse_release_info(t.custom), "target " + t.name);
    if (info && info->version.str() != version)
      info = fail("manifest.invalid", "target " + t.name + " claims to be release " + info->version.str());
    if (!info) {
      log::warning("skipping a malformed release: " + info.error().describe(), {{"TARGET", t.name}});
      continue;
    }
    out.push_back({std::move(*info), std::move(t)});
  }
  return out;
}

Result<Release> choose_release(const std::vector<Release>& releases, const std::optional<Version>& version,
                               const std::string& channel) {
  const Release* best = nullptr;
  for (const auto& r : releases) {
    if (version) {
      if (r.info.version != *version) continue;
      if (r.info.revoked) return fail("fetch.revoked", "release " + version->str() + " has been revoked");
      return r;
    }
    if (r.info.revoked || r.info.channel != channel) continue;
    if (!best || r.info.version > best->info.version) best = &r;
  }
  if (version) return fail("fetch.no-release", "the repository has no release " + version->str());
  if (!best) return fail("fetch.no-release", "the repository has no release on channel " + channel);
  return *best;
}

Result<Manifest> load_manifest(tuf::Client& client, const Release& release) {
  auto bytes = BALLAST_TRY(client.download_target(release.target.name, kMaxManifestBytes));
  Manifest m = BALLAST_TRY(with_context(parse_manifest(bytes), release.target.name));
  if (m.version != release.info.version)
    return fail("manifest.invalid", release.target.name + " describes version " + m.version.str());
  return m;
}

bool delta_applies_to(const Artifact& delta, const LocalSubvolume& local) {
  if (delta.is_full() || delta.parent_uuid.empty()) return false;
  return local.received_uuid.empty() ? delta.parent_uuid == local.uuid : delta.parent_uuid == local.received_uuid;
}

std::string chunk_cache_dir(const std::string& state_dir) { return path_join(state_dir, "cache/chunks"); }

std::string chunk_base_url(const std::string& repo_url) {
  return layout::chunks_dir(repo_url) + "/";
}

}  // namespace ballast::repository

namespace ballast::repository {

namespace {

Result<TrustedRepository> open_client(const ReleaseRequest& req, const Clock& clock) {
  std::string tuf_dir = tuf::trusted_metadata_dir(req.state_dir);
  BALLAST_CHECK(make_dirs(tuf_dir, 0700));
  BALLAST_CHECK(tuf::Client::init_trust(tuf_dir, req.root_json));
  TrustedRepository r;
  r.http = make_curl_http_client(req.http);
  tuf::ClientOptions copts;
  copts.max_metadata_size = req.max_metadata_size;
  copts.target_cache_dir = path_join(req.state_dir, "cache/targets");
  r.client = BALLAST_TRY(tuf::open_repository(req.state_dir, *r.http, clock, req.repo_url, copts));
  return r;
}

}  // namespace

Result<TrustedRepository> refresh_repository(const ReleaseRequest& req, const Clock& clock) {
  auto r = BALLAST_TRY(open_client(req, clock));
  BALLAST_CHECK(r.client->refresh());
  return r;
}

Result<TrustedRepository> open_trusted_repository(const ReleaseRequest& req, const Clock& clock) {
  auto r = BALLAST_TRY(open_client(req, clock));
  BALLAST_CHECK(r.client->load_trusted());
  return r;
}

FetchOptions fetch_options(const ReleaseRequest& req) {
  FetchOptions fo;
  fo.chunk_base_url = chunk_base_url(req.repo_url);
  fo.cache_dir = chunk_cache_dir(req.state_dir);
  fo.http = req.http;
  fo.parallel = req.parallel;
  fo.progress = req.progress;
  return fo;
}

}  // namespace ballast::repository
