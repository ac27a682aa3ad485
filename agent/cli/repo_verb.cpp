// `ballast repo …`: the publisher side of the update repository. Each subcommand is one
// function below listed in kRepoSubcommands; add a subcommand by writing its setup function
// and appending it there.
#include <iostream>

#include "agent/cli/verb.hpp"
#include "common/duration.hpp"
#include "repository/tuf/writer.hpp"

namespace ballast::cli {
namespace {

namespace tuf = repository::tuf;

// Options shared by the `repo` subcommands (CLI11 binds to storage that outlives parsing).
struct RepoOptions {
  std::string dir;
  std::string keys;
  std::string new_keys;
  std::string key_type = "ed25519";
  std::string expiry_root = "365d", expiry_targets = "90d", expiry_snapshot = "7d", expiry_timestamp = "1d";
};

RepoOptions& opts() {
  static RepoOptions o;
  return o;
}

void add_dir_and_keys(CLI::App* cmd) {
  cmd->add_option("DIR", opts().dir, "Repository directory")->required();
  cmd->add_option("--keys", opts().keys, "Key directory (root.pem, targets.pem, snapshot.pem, timestamp.pem)")
      ->required();
}

Result<std::chrono::seconds> expiry(const std::string& text, const char* what) {
  auto d = with_context(parse_duration(text), std::string("--expiry-") + what);
  if (!d) return tl::unexpected(d.error());
  if (*d < std::chrono::seconds(1)) return fail("repo.bad-expiry", std::string("--expiry-") + what + " must be at least 1s");
  return std::chrono::duration_cast<std::chrono::seconds>(*d);
}

int print_versions(const GlobalOptions& g, const tuf::RepoWriter& w) {
  if (g.json) {
    print_json({{"repository", w.repo_dir()},
                {"root_version", w.root_version()},
                {"targets_version", w.targets_version()},
                {"snapshot_version", w.snapshot_version()},
                {"timestamp_version", w.timestamp_version()}});
  } else {
    std::cout << w.repo_dir() << ": root v" << w.root_version() << ", targets v" << w.targets_version()
              << ", snapshot v" << w.snapshot_version() << ", timestamp v" << w.timestamp_version() << "\n";
  }
  return 0;
}

int run_init(const GlobalOptions& g) {
  const auto& o = opts();
  tuf::Expiries e;
  auto type = tuf::parse_key_type(o.key_type);
  if (!type) return report_error(type.error());
  for (auto [text, what, field] : {std::tuple{&o.expiry_root, "root", &e.root}, std::tuple{&o.expiry_targets, "targets", &e.targets},
                                   std::tuple{&o.expiry_snapshot, "snapshot", &e.snapshot},
                                   std::tuple{&o.expiry_timestamp, "timestamp", &e.timestamp}}) {
    auto d = expiry(*text, what);
    if (!d) return report_error(d.error());
    *field = *d;
  }
  if (auto st = tuf::RepoWriter::init(o.dir, o.keys, e, *type); !st) return report_error(st.error());
  auto w = tuf::RepoWriter::open(o.dir, o.keys);
  if (!w) return report_error(w.error());
  return print_versions(g, *w);
}

void setup_init(CLI::App& repo, VerbContext& ctx) {
  auto* cmd = repo.add_subcommand("init", "Create keys (unless present in KEYDIR) and version 1 of the metadata");
  add_dir_and_keys(cmd);
  auto& o = opts();
  cmd->add_option("--key-type", o.key_type, "Type of new keys: ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256")
      ->capture_default_str();
  cmd->add_option("--expiry-root", o.expiry_root, "Validity of root metadata")->capture_default_str();
  cmd->add_option("--expiry-targets", o.expiry_targets, "Validity of targets metadata")->capture_default_str();
  cmd->add_option("--expiry-snapshot", o.expiry_snapshot, "Validity of snapshot metadata")->capture_default_str();
  cmd->add_option("--expiry-timestamp", o.expiry_timestamp, "Validity of timestamp metadata")->capture_default_str();
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_init(g); }; });
}

int run_timestamp(const GlobalOptions& g) {
  auto w = tuf::RepoWriter::open(opts().dir, opts().keys);
  if (!w) return report_error(w.error());
  if (auto st = w->refresh_timestamp(); !st) return report_error(st.error());
  return print_versions(g, *w);
}

void setup_timestamp(CLI::App& repo, VerbContext& ctx) {
  auto* cmd = repo.add_subcommand("timestamp", "Sign a new timestamp with a fresh expiry (run it from cron)");
  add_dir_and_keys(cmd);
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_timestamp(g); }; });
}

int run_rotate_root(const GlobalOptions& g) {
  auto w = tuf::RepoWriter::open(opts().dir, opts().keys);
  if (!w) return report_error(w.error());
  if (auto st = w->rotate_root(opts().new_keys); !st) return report_error(st.error());
  return print_versions(g, *w);
}

void setup_rotate_root(CLI::App& repo, VerbContext& ctx) {
  auto* cmd = repo.add_subcommand("rotate-root", "Publish a new root trusting the keys in NEWDIR (created if absent)");
  add_dir_and_keys(cmd);
  cmd->add_option("--new-keys", opts().new_keys, "Key directory of the new keys")->required();
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_rotate_root(g); }; });
}

using RepoSubcommand = void (*)(CLI::App& repo, VerbContext& ctx);
constexpr RepoSubcommand kRepoSubcommands[] = {setup_init, setup_timestamp, setup_rotate_root};

void setup(VerbContext& ctx) {
  auto* repo = ctx.app.add_subcommand("repo", "Publish an update repository: keys, releases, signed metadata");
  repo->require_subcommand(1);
  for (auto sub : kRepoSubcommands) sub(*repo, ctx);
}

BALLAST_REGISTER_VERB(500, setup);

}  // namespace
}  // namespace ballast::cli
