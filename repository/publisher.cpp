#include "repository/publisher.hpp"

#include <algorithm>
#include <map>

#include "common/file.hpp"
#include "repository/chunk_codec.hpp"
#include "repository/layout.hpp"

namespace ballast::repository {

std::string chunk_store_dir(const std::string& repo_dir) { return layout::chunks_dir(repo_dir); }
std::string reuse_index_path(const std::string& repo_dir) { return path_join(layout::build_dir(repo_dir), "reuse-index"); }

namespace {

// The releases the repository publishes: the signed custom data of each release manifest target
// (a target under releases/ that is not its version's manifest is no release). The publisher's
// checks all read the repository through this one list.
Result<std::vector<ReleaseInfo>> published_releases(const tuf::RepoWriter& writer) {
  std::vector<ReleaseInfo> out;
  for (const auto& [name, target] : writer.targets()) {
    if (!name.starts_with("releases/") || !name.ends_with("/manifest.json")) continue;
    ReleaseInfo info = BALLAST_TRY(with_context(parse_release_info(target.custom), name));
    if (manifest_target_name(info.version) == name) out.push_back(std::move(info));
  }
  return out;
}

// Published manifests, each read and parsed once however many checks ask for it (a revocation
// checks every later release, each through its own window of earlier ones).
class ManifestReader {
 public:
  explicit ManifestReader(const tuf::RepoWriter& writer) : writer_(writer) {}
  Result<Manifest> read(const Version& version) {
    auto key = version.str();
    if (auto it = read_.find(key); it != read_.end()) return it->second;
    auto text = BALLAST_TRY(writer_.read_target(manifest_target_name(version)));
    auto manifest = with_context(parse_manifest(text), [&] { return "release " + key; });
    return read_.emplace(std::move(key), std::move(manifest)).first->second;
  }

 private:
  const tuf::RepoWriter& writer_;
  std::map<std::string, Result<Manifest>> read_;
};

// Whether a host with nothing installed reaches a release that has no full stream and deltas
// from `froms`: through the planner's window (chain_window), from the full stream that ends it.
Result<bool> installable_without_full(const std::vector<ReleaseInfo>& published, ManifestReader& manifests,
                                      const Version& version, const std::vector<Version>& froms) {
  std::optional<Error> unreadable;
  auto window = chain_window(
      published, version, false, std::nullopt,
      [&](const ReleaseInfo& info) { return manifests.read(info.version); },
      [&](const ReleaseInfo&, const Error& e) {
        if (!unreadable) unreadable = e;
      });
  if (unreadable) return tl::unexpected(*unreadable);
  if (window.empty() || !window.back().full()) return false;
  std::vector<Version> reached{window.back().version};
  // Oldest to newest: a delta in the window only comes from a release in it.
  for (size_t i = window.size() - 1; i-- > 0;)
    for (const auto& a : window[i].artifacts)
      if (a.from && std::find(reached.begin(), reached.end(), *a.from) != reached.end()) {
        reached.push_back(window[i].version);
        break;
      }
  return std::any_of(froms.begin(), froms.end(),
                     [&](const Version& f) { return std::find(reached.begin(), reached.end(), f) != reached.end(); });
}

}  // namespace

Result<PublishReport> publish_release(tuf::RepoWriter& writer, const ReleaseInfo& info,
                                      const std::vector<ArtifactInput>& inputs, const PackOptions& pack,
                                      const std::optional<MeasuredBoot>& measured_boot) {
  const auto& published = writer.targets();
  if (published.count(manifest_target_name(info.version)))
    return fail("repo.release-exists", "release " + info.version.str() + " is already published");
  size_t fulls = 0;
  std::vector<std::optional<Version>> froms;  // per input: nullopt for the full stream
  for (const auto& in : inputs) {
    if (in.from.empty()) {
      ++fulls;
      froms.emplace_back();
      continue;
    }
    Version from = BALLAST_TRY(with_context(Version::parse(in.from), "delta from"));
    if (from == info.version) return fail("repo.bad-delta", "a delta from the release itself");
    if (!published.count(manifest_target_name(from)))
      return fail("repo.unknown-release", "cannot add a delta from " + in.from + ": no such release in the repository");
    froms.push_back(from);
  }
  if (fulls > 1) return fail("repo.two-fulls", "a release has at most one full stream");
  if (fulls == 0) {
    std::vector<Version> from_versions;
    for (const auto& f : froms) from_versions.push_back(*f);
    ManifestReader manifests(writer);
    if (!BALLAST_TRY(installable_without_full(BALLAST_TRY(published_releases(writer)), manifests, info.version, from_versions)))
      return fail("repo.no-full",
                  "release " + info.version.str() +
                      " has no full stream, and no delta of it starts from a release a new host can install (the newest "
                      "older release with a full stream that is not revoked, or one its deltas reach): publish its full stream");
  }
  BALLAST_CHECK(with_context(validate_zstd_level(pack.full_zstd_level), "the full stream's level"));
  BALLAST_CHECK(with_context(validate_zstd_level(pack.zstd_level), "the deltas' level"));

  PublishReport report;
  report.manifest.version = info.version;
  report.manifest.measured_boot = measured_boot;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ArtifactInput& in = inputs[i];
    std::string what = in.from.empty() ? "the full stream" : "the delta from " + in.from;
    auto stream = with_context(in.open(), "sending " + what);
    if (!stream) return tl::unexpected<Error>(stream.error());
    PackOptions opts = pack;
    if (in.from.empty()) opts.zstd_level = pack.full_zstd_level;
    opts.reuse_index = reuse_index_path(writer.repo_dir());
    PackStats st;
    auto art = with_context(pack_stream(**stream, chunk_store_dir(writer.repo_dir()), opts, &st), "packing " + what);
    stream->reset();
    // A packer error comes first: the producer then only saw its reader go away.
    Status produced = in.finish ? with_context(in.finish(), "sending " + what) : ok();
    if (!art) return tl::unexpected<Error>(art.error());
    BALLAST_CHECK(produced);
    art->from = froms[i];
    art->parent_uuid = in.parent_uuid;
    report.manifest.artifacts.push_back(std::move(*art));
    report.stats.chunks += st.chunks;
    report.stats.new_chunks += st.new_chunks;
    report.stats.new_bytes += st.new_bytes;
    report.stats.reused += st.reused;
  }
  // What is published must parse with the client's own strict parser.
  std::string text = serialize_manifest(report.manifest);
  BALLAST_CHECK(with_context(parse_manifest(text), "checking the new manifest"));
  BALLAST_CHECK(writer.add_target(manifest_target_name(info.version), text, release_info_json(info)));
  BALLAST_CHECK(writer.commit());
  return report;
}

Result<std::vector<Version>> last_releases(const tuf::RepoWriter& writer, const std::string& channel, const Version& version,
                                           size_t count) {
  std::vector<Version> out;
  for (const auto& info : BALLAST_TRY(published_releases(writer)))
    if (!info.revoked && info.channel == channel && info.version < version) out.push_back(info.version);
  std::sort(out.begin(), out.end(), [](const Version& a, const Version& b) { return a > b; });
  if (out.size() > count) out.resize(count);
  return out;
}

Result<std::vector<Version>> revoke_release(tuf::RepoWriter& writer, const Version& version) {
  std::string name = manifest_target_name(version);
  auto it = writer.targets().find(name);
  if (it == writer.targets().end()) return fail("repo.unknown-release", "no release " + version.str() + " in the repository");
  ReleaseInfo info = BALLAST_TRY(with_context(parse_release_info(it->second.custom), "release " + version.str()));
  if (info.revoked) return std::vector<Version>{};
  info.revoked = true;
  BALLAST_CHECK(writer.set_custom(name, release_info_json(info)));
  // A revocation is never refused (it may be urgent), but a chain it cuts is named. Only newer
  // releases can lose their route; one whose manifest cannot be read is not judged here.
  std::vector<Version> unreachable;
  // A repository whose release data cannot be read (a later check will say so) names none.
  if (auto published = published_releases(writer)) {
    ManifestReader manifests(writer);
    for (const auto& later : *published) {
      if (later.revoked || later.version <= version) continue;
      auto manifest = manifests.read(later.version);
      if (!manifest || manifest->full()) continue;
      std::vector<Version> froms;
      for (const auto& a : manifest->artifacts)
        if (a.from) froms.push_back(*a.from);
      auto reached = installable_without_full(*published, manifests, later.version, froms);
      if (reached && !*reached) unreachable.push_back(later.version);
    }
  }
  std::sort(unreachable.begin(), unreachable.end());
  BALLAST_CHECK(writer.commit());
  return unreachable;
}

}  // namespace ballast::repository
