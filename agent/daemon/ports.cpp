#include "agent/daemon/ports.hpp"

#include <algorithm>

#include "agent/daemon/pin.hpp"
#include "agent/host/loader.hpp"
#include "agent/host/retention.hpp"
#include "agent/host/stage.hpp"
#include "agent/measured_boot.hpp"
#include "agent/repository_contact.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast::agent {

namespace {

// The host's slots a delta may start from, the booted one first.
std::vector<LocalSlot> local_slots(const snapshot::HostLayout& host, const std::optional<Version>& booted) {
  std::vector<LocalSlot> out;
  auto slots = snapshot::list_slots(host);
  if (!slots) {
    log::warning("no delta base: " + slots.error().describe());
    return out;
  }
  for (const auto& version : *slots) {
    auto local = host::local_subvolume(host.slot(version));
    if (!local) {
      log::warning("no delta base in slot " + version.str() + ": " + local.error().describe());
      continue;
    }
    out.push_back({version, *local});
  }
  std::stable_partition(out.begin(), out.end(), [&](const LocalSlot& s) { return booted && s.version == *booted; });
  return out;
}

}  // namespace

Result<ReleasePlan> plan_release_fetch(repository::tuf::Client& client, const std::vector<repository::Release>& releases,
                                       const PlanDecision& decision, const repository::Manifest& manifest,
                                       const std::vector<LocalSlot>& slots) {
  if (!decision.target) return fail("plan.no-target", "no release to fetch");
  std::vector<repository::ReleaseInfo> infos;
  for (const auto& r : releases) infos.push_back(r.info);
  std::optional<Version> oldest;
  for (const auto& s : slots)
    if (!oldest || s.version < *oldest) oldest = s.version;
  auto load = [&](const repository::ReleaseInfo& info) -> Result<repository::Manifest> {
    for (const auto& r : releases)
      if (r.info.version == info.version) return repository::load_manifest(client, r);
    return fail("fetch.no-release", "no release " + info.version.str());
  };
  auto through = repository::chain_window(infos, *decision.target, manifest.full() != nullptr, oldest, load,
                                          [](const repository::ReleaseInfo& info, const Error& e) {
                                            log::warning("no chain of deltas through " + info.version.str() + ": " + e.describe());
                                          });
  return plan_fetch(decision, manifest, slots, through, infos);
}

Result<std::vector<std::pair<Version, repository::Artifact>>> planned_artifacts(
    repository::tuf::Client& client, const std::vector<repository::Release>& releases, const ReleasePlan& plan,
    const repository::Manifest& manifest, const std::string& channel) {
  std::vector<std::pair<Version, repository::Artifact>> links;
  for (size_t i = 0; i + 1 < plan.chain.size(); ++i) {
    const PlanLink& link = plan.chain[i];
    auto through = BALLAST_TRY(with_context(repository::choose_release(releases, link.to, channel), "the chain of deltas"));
    auto through_manifest = BALLAST_TRY(repository::load_manifest(client, through));
    links.emplace_back(link.to, BALLAST_TRY(planned_link(link, through_manifest)));
  }
  links.emplace_back(plan.version, BALLAST_TRY(planned_artifact(plan, manifest)));
  return links;
}

repository::Artifact chunks_of_plan(const std::vector<std::pair<Version, repository::Artifact>>& links) {
  repository::Artifact all = links.empty() ? repository::Artifact{} : links.back().second;
  all.chunks.clear();
  all.size = all.usize = 0;
  for (const auto& [version, a] : links) {
    all.chunks.insert(all.chunks.end(), a.chunks.begin(), a.chunks.end());
    all.size += a.size;
    all.usize += a.usize;
  }
  return all;
}

Result<PlannedFetch> plan_request(const repository::ReleaseRequest& req, const std::string& local_path, const Clock& clock) {
  auto trusted = BALLAST_TRY(repository::refresh_repository(req, clock));
  auto& client = *trusted.client;
  auto releases = BALLAST_TRY(repository::list_releases(client));
  auto release = BALLAST_TRY(repository::choose_release(releases, req.version, req.channel));
  auto manifest = BALLAST_TRY(repository::load_manifest(client, release));
  std::vector<LocalSlot> slots;
  if (req.local) {
    auto named = snapshot::image_version_of(local_path);
    auto version = named ? Version::parse(*named) : Result<Version>(tl::unexpected(named.error()));
    if (version) {
      slots.push_back(LocalSlot{*version, *req.local});
    } else {
      for (const auto& r : releases)
        if (r.info.version < release.info.version) slots.push_back(LocalSlot{r.info.version, *req.local});
    }
  }
  PlanDecision decision;
  decision.target = release.info.version;
  decision.reason = "fetch " + release.info.version.str();
  PlannedFetch out;
  out.info = release.info;
  out.plan = BALLAST_TRY(plan_release_fetch(client, releases, decision, manifest, slots));
  out.links = BALLAST_TRY(planned_artifacts(client, releases, out.plan, manifest, req.channel));
  return out;
}

Result<std::optional<ReleasePlan>> HostReleaseSource::check(const std::vector<Version>& denylist) {
  // The update's one refresh: the plan's manifest is read through it, and staging later reads
  // the same trusted metadata without refreshing.
  auto refreshed = repository::refresh_repository(opts_.request, clock_);
  const auto failure = refreshed ? std::nullopt : std::optional(refreshed.error());
  if (auto st = record_repository_contact(opts_.state_dir, failure, clock_.now()); !st)
    log::warning("recording the repository's reachability: " + st.error().describe());
  auto repo = BALLAST_TRY(std::move(refreshed));
  auto releases = BALLAST_TRY(repository::list_releases(*repo.client));
  PlanInput in;
  for (const auto& r : releases) in.releases.push_back(r.info);
  in.booted = value_if_ok(boot_.booted_version());
  in.channel = opts_.request.channel;
  in.pin = BALLAST_TRY(read_pin(opts_.state_dir));
  in.wariness = opts_.wariness;
  in.denylist = denylist;
  in.retained = BALLAST_TRY(snapshot::list_deployments(opts_.host));
  in.now = clock_.now();
  PlanDecision d = plan_update(in);
  log::info("update check: " + d.reason);
  {
    std::lock_guard lock(mutex_);
    last_ = d;
  }
  if (!d.target) return std::optional<ReleasePlan>();
  if (auto back = plan_going_back(d, in.retained)) return back;
  auto release = BALLAST_TRY(repository::choose_release(releases, *d.target, in.channel));
  auto manifest = BALLAST_TRY(repository::load_manifest(*repo.client, release));
  auto slots = local_slots(opts_.host, in.booted);
  auto plan = BALLAST_TRY(plan_release_fetch(*repo.client, releases, d, manifest, slots));
  log::info("update plan: " + describe_plan(plan));
  return std::optional<ReleasePlan>(std::move(plan));
}

Status HostReleaseSource::stage(const ReleasePlan& plan) {
  const std::optional<Version> booted_version = value_if_ok(boot_.booted_version());
  // Going back to a retained deployment (a revoked release left, a pin to an older version):
  // nothing to fetch, its entry only has to come first.
  if (plan.backward) return with_context(boot_.prefer(plan.version), "going back to " + plan.version.str());
  // The trusted metadata as the check left it: no second refresh, the same release.
  auto repo = BALLAST_TRY(repository::open_trusted_repository(opts_.request, clock_));
  auto releases = BALLAST_TRY(repository::list_releases(*repo.client));
  auto release = BALLAST_TRY(repository::choose_release(releases, plan.version, opts_.request.channel));
  auto manifest = BALLAST_TRY(repository::load_manifest(*repo.client, release));
  auto links = BALLAST_TRY(planned_artifacts(*repo.client, releases, plan, manifest, opts_.request.channel));
  repository::ReleaseRequest req = opts_.request;
  auto fetch = repository::fetch_options(req);
  // What an earlier failed attempt at this target verified is reused; other targets' chunks go.
  const repository::Artifact all_chunks = chunks_of_plan(links);
  const uint64_t cached_bytes = BALLAST_TRY(repository::retain_cached_chunks(fetch.cache_dir, all_chunks));
  // Each link's stream opens when staging reaches it; progress counts the links before it.
  std::vector<std::function<Result<std::unique_ptr<ByteSource>>()>> opens;
  uint64_t earlier = 0;
  for (const auto& [version, a] : links) {
    repository::FetchOptions link_fetch = fetch;
    if (opts_.on_progress) {
      auto cb = opts_.on_progress;
      link_fetch.progress = [cb, plan, earlier](const repository::FetchProgress& p) { cb(progress_of(p, plan, earlier)); };
    }
    opens.push_back([a = a, link_fetch]() -> Result<std::unique_ptr<ByteSource>> {
      return std::unique_ptr<ByteSource>(BALLAST_TRY(repository::open_artifact_stream(a, link_fetch)));
    });
    earlier += a.size;
  }
  // What the trial boot must measure travels with the staged release, from its signed manifest.
  BALLAST_CHECK(save_expected_pcr11(opts_.state_dir, plan.version.str(), manifest.measured_boot));
  host::StageContext ctx{opts_.host, boot_, opts_.state_dir, booted_version};
  host::StageRequest sreq;
  sreq.version = plan.version;
  sreq.needed_bytes = all_chunks.usize;
  sreq.download_bytes = repository::bytes_to_download(all_chunks, cached_bytes);
  sreq.cmdline = release.info.cmdline;
  sreq.tries = opts_.tries;
  sreq.entry_type = opts_.entry_type;
  sreq.esp_fstab = opts_.esp_fstab;
  for (size_t i = 0; i + 1 < links.size(); ++i) sreq.chain_before.push_back(host::ChainStep{links[i].first, opens[i]});
  sreq.open_stream = opens.back();
  if (auto staged = host::stage_release(ctx, sreq); !staged) return tl::unexpected(staged.error());
  // Applied: no chunk is needed again (a failed attempt keeps its target's chunks for the retry).
  BALLAST_CHECK(repository::clear_cache(repository::chunk_cache_dir(req.state_dir)));
  return host::retain(opts_.host, boot_, booted_version, opts_.keep);
}

Result<boot::LoaderUpdate> HostReleaseSource::update_loader(const Version& version) {
  return host::update_loader(opts_.host, boot_, version);
}

std::string HostReleaseSource::explain() const {
  std::lock_guard lock(mutex_);
  return last_.reason;
}

PlanDecision HostReleaseSource::last_decision() const {
  std::lock_guard lock(mutex_);
  return last_;
}

Progress progress_of(const repository::FetchProgress& p, const ReleasePlan& plan, uint64_t earlier_bytes) {
  Progress out;
  out.bytes = earlier_bytes + p.bytes_done;
  out.total_bytes = plan.download_bytes;
  out.rate = p.bytes_per_second;
  out.percent = plan.download_bytes ? 100.0 * static_cast<double>(out.bytes) / static_cast<double>(plan.download_bytes) : 0;
  out.message = "fetching " + plan.version.str() + " (" + describe_plan(plan) + ")";
  return out;
}

std::vector<std::string> deployment_health_dirs(const snapshot::HostLayout& host, const Version& version) {
  std::string root = host.deployment(version);
  return {root + "/usr/lib/ballast/health.d", root + "/etc/ballast/health.d"};
}

Result<HealthReport> HostHealthChecker::run() {
  HealthOptions o = opts_;
  std::optional<Version> booted;
  if (host_ || measured_) {
    booted = BALLAST_TRY(with_context(boot_->booted_version(), "finding the booted deployment's health checks"));
  }
  if (host_) o.dirs = deployment_health_dirs(*host_, *booted);
  auto report = BALLAST_TRY(run_health_checks(o));
  if (measured_) BALLAST_CHECK(add_measured_boot_check(report, measured_->tpm, measured_->state_dir, *booted));
  return report;
}

HealthOptions health_options(const Config& cfg) {
  HealthOptions o;
  o.timeout = cfg.get_duration("health.check_timeout");
  o.check_failed_units = cfg.get_bool("health.check_failed_units");
  return o;
}

}  // namespace ballast::agent
