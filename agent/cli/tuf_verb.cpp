// `ballast tuf init|refresh|download`: the bare TUF client, for operators debugging a
// repository and for conformance tests against other TUF tooling. Trusted metadata lives in
// STATE_DIR/tuf; a refused refresh exits 1 naming the attack or fault by its error code.
#include <iostream>
#include <memory>
#include <optional>

#include "agent/cli/verb.hpp"
#include "agent/credentials.hpp"
#include "common/clock.hpp"
#include "common/file.hpp"
#include "repository/http.hpp"
#include "repository/tuf/client.hpp"

namespace ballast::cli {
namespace {

namespace tuf = repository::tuf;

struct TufOptions {
  std::string root;
  std::string repo;
  std::string target_base_url;  // empty: REPO/targets
  std::string target;
  std::string out;
  uint64_t max_target_size = uint64_t(1) << 30;
};

// A client of o.repo whose trusted metadata was just refreshed, with the HTTP client and clock it uses.
struct RefreshedClient {
  std::unique_ptr<repository::HttpClient> http;
  SystemClock clock;
  std::optional<tuf::Client> tuf;
};

Result<std::unique_ptr<RefreshedClient>> refreshed_client(const GlobalOptions& g, const TufOptions& o) {
  auto cfg = BALLAST_TRY(g.load_config());
  auto c = std::make_unique<RefreshedClient>();
  c->http = repository::make_curl_http_client(agent::repository_http_settings(cfg));
  tuf::ClientOptions options;
  options.max_metadata_size = static_cast<uint64_t>(cfg.get_int("repository.max_metadata_size"));
  c->tuf.emplace(BALLAST_TRY(tuf::open_repository(g.state_dir, *c->http, c->clock, o.repo, options, o.target_base_url)));
  BALLAST_CHECK(c->tuf->refresh());
  return c;
}

nlohmann::json target_json(const tuf::TargetInfo& t) {
  nlohmann::json j{{"name", t.name}, {"length", t.length}, {"hashes", t.hashes}};
  if (!t.custom.is_null()) j["custom"] = t.custom;
  return j;
}

int init(const GlobalOptions& g, const TufOptions& o) {
  auto st = tuf::Client::init_trust(tuf::trusted_metadata_dir(g.state_dir), o.root);
  if (!st) return report_error(st.error());
  if (g.json) print_json({{"trusted_metadata_dir", tuf::trusted_metadata_dir(g.state_dir)}});
  else std::cout << "trusted root installed in " << tuf::trusted_metadata_dir(g.state_dir) << "\n";
  return 0;
}

int refresh(const GlobalOptions& g, const TufOptions& o) {
  auto refreshed = refreshed_client(g, o);
  if (!refreshed) return report_error(refreshed.error());
  auto& client = (*refreshed)->tuf;
  auto targets = client->targets();
  if (!targets) return report_error(targets.error());
  if (g.json) {
    nlohmann::json out{{"root_version", client->root_version()},
                       {"timestamp_version", client->timestamp_version()},
                       {"snapshot_version", client->snapshot_version()},
                       {"targets_version", client->targets_version()},
                       {"targets", nlohmann::json::array()}};
    for (const auto& t : *targets) out["targets"].push_back(target_json(t));
    print_json(out);
    return 0;
  }
  std::cout << "root v" << client->root_version() << ", timestamp v" << client->timestamp_version() << ", snapshot v"
            << client->snapshot_version() << ", targets v" << client->targets_version() << "\n";
  for (const auto& t : *targets) {
    auto h = t.hashes.count("sha256") ? t.hashes.at("sha256") : t.hashes.begin()->second;
    std::cout << t.name << "\t" << t.length << "\t" << h << "\n";
  }
  return 0;
}

int download(const GlobalOptions& g, const TufOptions& o) {
  auto refreshed = refreshed_client(g, o);
  if (!refreshed) return report_error(refreshed.error());
  auto& client = (*refreshed)->tuf;
  // --out doubles as the local copy: one that already matches the trusted metadata is kept.
  auto bytes = client->download_target(o.target, o.max_target_size, o.out);
  if (!bytes) return report_error(bytes.error());
  if (g.json) print_json({{"target", o.target}, {"length", bytes->size()}, {"out", o.out}});
  return 0;
}

void setup(VerbContext& ctx) {
  static TufOptions o;
  auto* cmd = ctx.app.add_subcommand("tuf", "The bare TUF client: trust a root, refresh metadata, download targets");
  cmd->require_subcommand(1);

  auto* init_cmd = cmd->add_subcommand("init", "Install the first trusted root.json in STATE_DIR/tuf");
  init_cmd->add_option("--root", o.root, "Trusted root metadata (e.g. /usr/lib/ballast/root.json)")->required();
  init_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return init(g, o); }; });

  auto* refresh_cmd = cmd->add_subcommand("refresh", "Update trusted metadata from a repository and print its targets");
  refresh_cmd->add_option("--repo", o.repo, "Repository URL (https:// or file://), holding metadata/ and targets/")
      ->required();
  refresh_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return refresh(g, o); }; });

  auto* download_cmd = cmd->add_subcommand("download", "Refresh, then download one target and verify it");
  download_cmd->add_option("--repo", o.repo, "Repository URL (https:// or file://)")->required();
  download_cmd->add_option("--target", o.target, "Target name, e.g. releases/1.2/manifest.json")->required();
  download_cmd->add_option("--out", o.out, "File to write the verified bytes to (kept when it already matches)")
      ->required();
  download_cmd->add_option("--target-base-url", o.target_base_url,
                           "Where the targets live when not below REPO/targets (a CDN, for example)");
  download_cmd->add_option("--max-size", o.max_target_size, "Refuse targets larger than this many bytes");
  download_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return download(g, o); }; });
}

BALLAST_REGISTER_VERB(600, setup);

}  // namespace
}  // namespace ballast::cli
