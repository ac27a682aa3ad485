// `ballast fetch`: refresh the TUF metadata, pick a release, plan as the daemon does (the cheapest
// by bytes of the full stream, a delta from a local subvolume, or a chain of deltas from it), and
// stream the verified chunks straight into the receiver.
#include <cstdio>
#include <deque>
#include <iostream>
#include <optional>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/daemon/ports.hpp"
#include "agent/host/stage.hpp"
#include "common/clock.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "repository/fetcher.hpp"
#include "repository/http.hpp"
#include "repository/release.hpp"
#include "repository/tuf/client.hpp"
#include "snapshot/host_layout.hpp"
#include "snapshot/receive.hpp"
#include "snapshot/subvolume.hpp"

namespace ballast::cli {
namespace {

namespace repo = repository;

struct FetchArgs {
  std::string repo_url;
  std::string root;
  std::string version;
  std::string channel;
  std::string from_subvolume;
  std::string dir;
  std::string ca_bundle, client_cert, client_key;
  int parallel = 0;
  bool keep_cache = false;
  bool progress = false;
};

// One fetch per target directory: under its lock, a hidden subvolume a killed fetch left there is
// debris and goes before this fetch adds its own.
Result<HostLock> lock_fetch_dir(const GlobalOptions& g, const std::string& dir) {
  if (!path_exists(dir)) return fail("fetch.no-dir", "the target directory " + dir + " does not exist");
  auto lock = BALLAST_TRY(HostLock::acquire(path_join(dir, ".ballast-fetch.lock"), "fetch",
                                            g.wait ? HostLock::Mode::wait : HostLock::Mode::fail, "fetch.locked"));
  for (const auto& n : BALLAST_TRY(snapshot::remove_receive_debris(dir)))
    log::notice("removed " + n + ", left in " + dir + " by an interrupted fetch");
  return Result<HostLock>(std::move(lock));
}

int run_fetch(const GlobalOptions& g, const FetchArgs& a) {
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  auto dir_lock = lock_fetch_dir(g, a.dir);
  if (!dir_lock) return report_error(dir_lock.error());
  auto req = release_request(g, *cfg, a.repo_url, a.root);
  if (!a.ca_bundle.empty()) req.http.ca_bundle = a.ca_bundle;
  if (!a.client_cert.empty()) req.http.client_cert = a.client_cert;
  if (!a.client_key.empty()) req.http.client_key = a.client_key;
  if (!a.version.empty()) {
    auto version = Version::parse(a.version);
    if (!version) return report_error(version.error());
    req.version = *version;
  }
  if (!a.channel.empty()) req.channel = a.channel;
  if (a.parallel > 0) req.parallel = static_cast<unsigned>(a.parallel);
  if (!a.from_subvolume.empty()) {
    auto l = host::local_subvolume(a.from_subvolume);
    if (!l) return report_error(l.error());
    req.local = *l;
  }
  if (a.progress)
    req.progress = [](const repo::FetchProgress& p) {
      std::fprintf(stderr, "\r%llu / %llu bytes, %.1f MB/s   ", static_cast<unsigned long long>(p.bytes_done),
                   static_cast<unsigned long long>(p.bytes_total), p.bytes_per_second / 1e6);
    };
  SystemClock clock;
  auto planned = agent::plan_request(req, a.from_subvolume, clock);
  if (!planned) return report_error(planned.error());
  const agent::ReleasePlan& plan = planned->plan;
  const auto& links = planned->links;
  repo::FetchOptions fo = repo::fetch_options(req);
  // What an earlier fetch of the same artifacts verified is reused; any other chunk goes.
  if (auto cached = repo::retain_cached_chunks(fo.cache_dir, agent::chunks_of_plan(links)); !cached)
    return report_error(cached.error());
  std::vector<std::string> clone_sources;
  if (!a.from_subvolume.empty()) clone_sources.push_back(a.from_subvolume);
  // A chain's earlier releases go into hidden scratch subvolumes beside DIR's new one, each the
  // next one's parent, deleted when the fetch ends however it ends (a killed fetch leaves them
  // under the receive prefix, and the next fetch into DIR removes them).
  std::deque<snapshot::SubvolumeGuard> scratch;
  repo::FetchStats stats;
  std::optional<snapshot::ReceivedSubvolume> received;
  for (size_t i = 0; i < links.size(); ++i) {
    const auto& [version, art] = links[i];
    const bool last = i + 1 == links.size();
    auto stream = repo::open_artifact_stream(art, fo);
    if (!stream) return report_error(stream.error());
    snapshot::ReceiveOptions ro;
    ro.dest_dir = a.dir;
    ro.clone_sources = clone_sources;
    if (!last) ro.name = std::string(snapshot::kReceivePrefix) + "chain-" + version.str();
    auto r = with_context(snapshot::receive(**stream, ro), "receiving " + version.str() + (last ? "" : " of the chain"));
    if (a.progress) std::fprintf(stderr, "\n");
    if (!r) return report_error(r.error());
    auto link_stats = (*stream)->stats();
    stats.network_bytes += link_stats.network_bytes;
    stats.cache_bytes += link_stats.cache_bytes;
    stats.requests += link_stats.requests;
    stats.retries += link_stats.retries;
    if (!a.keep_cache)
      if (auto st = (*stream)->discard_cache(); !st) return report_error(st.error());
    if (!last) {
      scratch.emplace_back(r->path);
      clone_sources.push_back(r->path);
    } else {
      received = std::move(*r);
    }
  }
  const repo::Artifact& art = links.back().second;
  const std::string kind = plan.chain.empty() ? (art.is_full() ? "full" : "delta") : "chain";
  if (g.json) {
    nlohmann::json chain = nlohmann::json::array();
    for (const auto& link : plan.chain) chain.push_back(agent::link_to_json(link));
    print_json({{"version", plan.version.str()},
                {"artifact", kind},
                {"from", str_or_empty(plan.delta_from)},
                {"plan", describe_plan(plan)},
                {"chain", chain},
                {"path", received->path},
                {"received_uuid", received->received_uuid},
                {"stream_bytes", art.usize},
                {"artifact_bytes", plan.download_bytes},
                {"network_bytes", stats.network_bytes},
                {"cache_bytes", stats.cache_bytes},
                {"requests", stats.requests},
                {"retries", stats.retries}});
  } else {
    std::cout << "received " << plan.version.str() << " (" << describe_plan(plan) << ") into " << received->path << ": "
              << stats.network_bytes << " bytes downloaded\n";
  }
  return 0;
}

void setup(VerbContext& ctx) {
  static FetchArgs a;
  auto* cmd = ctx.app.add_subcommand("fetch", "Fetch a release from a repository and receive it into DIR");
  cmd->add_option("--repo", a.repo_url, "Repository URL (https://, http:// or file://)")->required();
  cmd->add_option("--root", a.root, "Trusted root.json, installed into the state dir on first use")->required();
  cmd->add_option("--version", a.version, "Release to fetch; default: the newest on the channel");
  cmd->add_option("--channel", a.channel, "Release channel; default: update.channel");
  cmd->add_option("--from-subvolume", a.from_subvolume, "Local subvolume a delta, or a chain of deltas through the releases between, may start from");
  cmd->add_option("--ca-bundle", a.ca_bundle, "PEM CA bundle; default: repository.ca_bundle");
  cmd->add_option("--client-cert", a.client_cert, "PEM client certificate; default: repository.client_cert");
  cmd->add_option("--client-key", a.client_key, "PEM client key; default: repository.client_key");
  cmd->add_option("--parallel", a.parallel, "Chunks in flight; default: repository.parallel_fetches");
  cmd->add_flag("--keep-cache", a.keep_cache, "Keep the downloaded chunks in the state dir's cache");
  cmd->add_flag("--progress", a.progress, "Show progress on stderr");
  cmd->add_option("DIR", a.dir, "Directory (on Btrfs) to receive the subvolume into")->required();
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_fetch(g, a); }; });
}

BALLAST_REGISTER_VERB(510, setup);

}  // namespace
}  // namespace ballast::cli
