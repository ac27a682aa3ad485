#include "agent/daemon/ports.hpp"

#include "agent/daemon/pin.hpp"
#include "agent/host/retention.hpp"
#include "agent/host/stage.hpp"
#include "agent/measured_boot.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast::agent {

Result<std::optional<Release>> HostReleaseSource::check(const std::vector<std::string>& denylist) {
  auto releases = BALLAST_TRY(repository::refresh_releases(opts_.request, clock_));
  PlanInput in;
  for (auto& r : releases) in.releases.push_back(std::move(r.info));
  auto booted = boot_.booted_version();
  in.booted = booted ? booted->str() : "";
  in.channel = opts_.request.channel;
  if (auto pin = BALLAST_TRY(read_pin(opts_.state_dir))) in.pin = pin->str();
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
  if (!d.target) return std::optional<Release>();
  return std::optional<Release>(Release{*d.target, 0});
}

Status HostReleaseSource::stage(const Release& release) {
  Version version = BALLAST_TRY(Version::parse(release.version));
  auto booted = boot_.booted_version();
  std::string booted_version = booted ? booted->str() : "";
  // Going back to a retained deployment (a revoked release left, a pin to an older version):
  // nothing to fetch, its entry only has to come first.
  if (booted && version < *booted &&
      path_exists(opts_.host.deployment(release.version))) {
    auto entries = BALLAST_TRY(boot_.entries());
    for (const auto& e : entries)
      if (e.version == version) return boot_.prefer(version);
  }
  repository::ReleaseRequest req = opts_.request;
  req.version = version;
  if (!booted_version.empty() && path_exists(opts_.host.slot(booted_version))) {
    auto local = host::local_subvolume(opts_.host.slot(booted_version));
    if (local) req.local = *local;
    else log::warning("no delta base: " + local.error().describe());
  }
  if (opts_.on_progress) {
    auto cb = opts_.on_progress;
    std::string v = release.version;
    req.progress = [cb, v](const repository::FetchProgress& p) { cb(progress_of(p, v)); };
  }
  auto opened = BALLAST_TRY(repository::open_release(req, clock_));
  // What the trial boot must measure travels with the staged release, from its signed manifest.
  BALLAST_CHECK(save_expected_pcr11(opts_.state_dir, release.version, opened.manifest.measured_boot));
  host::StageContext ctx{opts_.host, boot_, opts_.state_dir, booted_version};
  host::StageRequest sreq;
  sreq.version = version;
  sreq.needed_bytes = opened.artifact.usize;
  sreq.cmdline = opened.info.cmdline;
  sreq.tries = opts_.tries;
  sreq.entry_type = opts_.entry_type;
  sreq.esp_fstab = opts_.esp_fstab;
  sreq.open_stream = [&opened]() -> Result<std::unique_ptr<ByteSource>> {
    if (!opened.stream) return fail("stage.stream-used", "the release stream can be read once");
    return std::unique_ptr<ByteSource>(std::move(opened.stream));
  };
  if (auto staged = host::stage_release(ctx, sreq); !staged) return tl::unexpected(staged.error());
  return host::retain(opts_.host, boot_, booted_version, opts_.keep);
}

std::string HostReleaseSource::explain() const {
  std::lock_guard lock(mutex_);
  return last_.reason;
}

PlanDecision HostReleaseSource::last_decision() const {
  std::lock_guard lock(mutex_);
  return last_;
}

Progress progress_of(const repository::FetchProgress& p, const std::string& version) {
  Progress out;
  out.bytes = p.bytes_done;
  out.total_bytes = p.bytes_total;
  out.rate = p.bytes_per_second;
  out.percent = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 0;
  out.message = "fetching " + version;
  return out;
}

std::vector<std::string> deployment_health_dirs(const snapshot::HostLayout& host, const std::string& version) {
  std::string root = host.deployment(version);
  return {root + "/usr/lib/ballast/health.d", root + "/etc/ballast/health.d"};
}

Result<HealthReport> HostHealthChecker::run() {
  HealthOptions o = opts_;
  std::optional<Version> booted;
  if (host_ || measured_) {
    booted = BALLAST_TRY(with_context(boot_->booted_version(), "finding the booted deployment's health checks"));
  }
  if (host_) o.dirs = deployment_health_dirs(*host_, booted->str());
  auto report = BALLAST_TRY(run_health_checks(o));
  if (measured_) {
    auto expected = BALLAST_TRY(load_expected_pcr11(measured_->state_dir, booted->str()));
    report.checks.push_back(measured_boot_check(verify_measured_boot(measured_->tpm, expected)));
    report.healthy = report.healthy && report.checks.back().passed;
  }
  return report;
}

HealthOptions health_options(const Config& cfg) {
  HealthOptions o;
  o.timeout = cfg.get_duration("health.check_timeout");
  o.check_failed_units = cfg.get_bool("health.check_failed_units");
  return o;
}

}  // namespace ballast::agent
