// `ballast repo …`: the publisher side of the update repository. Each subcommand is one
// function below listed in kRepoSubcommands; add a subcommand by writing its setup function
// and appending it there.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "agent/cli/verb.hpp"
#include "common/duration.hpp"
#include "common/file.hpp"
#include "images/uki.hpp"
#include "repository/publisher.hpp"
#include "repository/tuf/writer.hpp"
#include "snapshot/host_layout.hpp"
#include "snapshot/send.hpp"
#include "snapshot/send_stream.hpp"
#include "snapshot/stream_rewrite.hpp"

namespace ballast::cli {

void setup_repo_push(CLI::App& repo, VerbContext& ctx);  // repo_push_verb.cpp

namespace {

namespace tuf = repository::tuf;

// Options shared by the `repo` subcommands (CLI11 binds to storage that outlives parsing).
struct RepoOptions {
  std::string dir;
  std::string keys;
  std::string new_keys;
  std::string key_type = "ed25519";
  std::string target_name, target_file, custom;
  std::string expiry_root = "365d", expiry_targets = "90d", expiry_snapshot = "7d", expiry_timestamp = "1d";
  // add / revoke
  std::string version;
  std::string subvolume;
  std::vector<std::string> delta_from;
  std::vector<std::string> delta_from_subvolume;
  size_t deltas_from_last = 0;
  std::string channel = "stable";
  std::string cmdline;
  std::string rollout_start;
  std::string rollout_duration = "0s";
  bool barrier = false;
  std::string expected_pcr11;
  bool no_measured_boot = false;
  bool no_full = false;
  repository::PackOptions pack;   // --full-level, --delta-level, --threads
  int zstd_level = 0;              // --zstd-level: both levels, unless given on their own
  CLI::Option* full_level = nullptr;
  CLI::Option* delta_level = nullptr;
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

int print_versions(const GlobalOptions& g, const tuf::RepoWriter& w, const nlohmann::json& extra = nlohmann::json::object()) {
  if (g.json) {
    nlohmann::json j = {{"repository", w.repo_dir()},
                        {"root_version", w.root_version()},
                        {"targets_version", w.targets_version()},
                        {"snapshot_version", w.snapshot_version()},
                        {"timestamp_version", w.timestamp_version()}};
    j.update(extra);
    print_json(j);
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

// The send stream of a subvolume as a ByteSource: the kernel writes it into a pipe from a
// thread while the packer reads the other end, so no copy of the stream lands on disk.
class SendPipe final : public ByteSource {
 public:
  static Result<std::unique_ptr<SendPipe>> start(snapshot::SendOptions opts) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("repo.pipe", errno, "cannot create a pipe");
    auto p = std::unique_ptr<SendPipe>(new SendPipe());
    p->read_end_ = UniqueFd(fds[0]);
    p->source_ = std::make_unique<FdByteSource>(fds[0]);
    p->thread_ = std::thread([p = p.get(), opts = std::move(opts), w = fds[1]] {
      p->status_ = snapshot::send(opts, w);
      ::close(w);
    });
    return p;
  }
  ~SendPipe() override { (void)finish(); }
  Result<size_t> read(void* buf, size_t len) override { return source_->read(buf, len); }
  // Waits for the sender; closing our end first unblocks a sender whose reader gave up.
  Status finish() {
    read_end_.reset();
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  SendPipe() = default;
  UniqueFd read_end_;
  std::unique_ptr<FdByteSource> source_;
  std::thread thread_;
  Status status_;
};

// The sender's stream, with the transids of received subvolumes rewritten (see
// snapshot/stream_rewrite.hpp); owns the source it reads.
class RewrittenSource final : public ByteSource {
 public:
  RewrittenSource(std::unique_ptr<ByteSource> in, std::vector<snapshot::TransidRewrite> rewrites)
      : in_(std::move(in)), rewriter_(*in_, std::move(rewrites)) {}
  Result<size_t> read(void* buf, size_t len) override { return rewriter_.read(buf, len); }

 private:
  std::unique_ptr<ByteSource> in_;
  snapshot::TransidRewriteSource rewriter_;
};

Result<repository::ArtifactInput> send_input(const std::string& subvolume, const std::string& parent,
                                             const std::string& from) {
  repository::ArtifactInput in;
  in.from = from;
  std::vector<snapshot::TransidRewrite> rewrites;
  auto self = BALLAST_TRY(snapshot::stream_identity(subvolume));
  if (auto r = snapshot::transid_rewrite(self)) rewrites.push_back(*r);
  if (!parent.empty()) {
    // Hosts find a delta's parent by this uuid, so it must be the one the stream names the
    // parent by: the kernel uses a received parent's received_uuid, which is also what a host's
    // slot of that version (received from the repository) carries; the parent's own uuid would
    // match nothing on a host.
    auto p = BALLAST_TRY(snapshot::stream_identity(parent));
    in.parent_uuid = snapshot::stream::format_uuid(p.uuid);
    if (auto r = snapshot::transid_rewrite(p)) rewrites.push_back(*r);
  }
  auto pipe = std::make_shared<std::unique_ptr<SendPipe>>();
  snapshot::SendOptions so;
  so.subvolume = subvolume;
  so.parent = parent;
  in.open = [pipe, so, rewrites]() -> Result<std::unique_ptr<ByteSource>> {
    auto p = BALLAST_TRY(SendPipe::start(so));
    SendPipe* raw = p.get();
    *pipe = std::move(p);
    // The publisher owns the reading side only; finish() below joins the sender.
    struct View final : ByteSource {
      SendPipe* p;
      explicit View(SendPipe* x) : p(x) {}
      Result<size_t> read(void* b, size_t l) override { return p->read(b, l); }
    };
    auto view = std::unique_ptr<ByteSource>(new View(raw));
    if (rewrites.empty()) return view;
    return std::unique_ptr<ByteSource>(new RewrittenSource(std::move(view), rewrites));
  };
  in.finish = [pipe]() -> Status {
    if (!*pipe) return ok();
    auto st = (*pipe)->finish();
    pipe->reset();
    return st;
  };
  return in;
}

// The PCR 11 values the release's UKI will measure, for its manifest: predicted from the UKI, or
// --expected-pcr11 for every phase (a test publishing a value no boot produces); none without a
// UKI or with --no-measured-boot.
Result<std::optional<repository::MeasuredBoot>> measured_boot_of(const std::string& subvolume) {
  const auto& o = opts();
  if (o.no_measured_boot) return std::optional<repository::MeasuredBoot>();
  repository::MeasuredBoot mb;
  if (!o.expected_pcr11.empty()) {
    if (!repository::valid_sha256_hex(o.expected_pcr11))
      return fail("repo.bad-pcr", "--expected-pcr11 must be 64 lowercase hex digits");
    for (const char* phase : images::kPcr11Phases) mb.pcr11_sha256[phase] = o.expected_pcr11;
    return std::optional<repository::MeasuredBoot>(std::move(mb));
  }
  const std::string uki = subvolume + images::kUkiPath;
  if (!path_exists(uki)) return std::optional<repository::MeasuredBoot>();
  mb.pcr11_sha256 = BALLAST_TRY(with_context(images::predict_pcr11(uki), "--subvolume " + subvolume));
  return std::optional<repository::MeasuredBoot>(std::move(mb));
}

int run_add(const GlobalOptions& g) {
  const auto& o = opts();
  ::signal(SIGPIPE, SIG_IGN);  // a failed packer closes the pipe; the sender must see EPIPE, not die
  if (!o.delta_from_subvolume.empty() && o.delta_from_subvolume.size() != o.delta_from.size()) {
    std::cerr << "ballast: give --delta-from-subvolume once per --delta-from, or not at all\n";
    return 2;
  }
  repository::ReleaseInfo info;
  auto version = Version::parse(o.version);
  if (!version) return report_error(version.error());
  info.version = *version;
  // The host refuses a stream whose image is another release; refuse to publish one.
  if (auto st = with_context(snapshot::check_image_version(o.subvolume, info.version), "--subvolume " + o.subvolume); !st)
    return report_error(st.error());
  info.channel = o.channel;
  info.cmdline = o.cmdline;
  info.barrier = o.barrier;
  if (!o.rollout_start.empty()) {
    auto d = with_context(parse_duration(o.rollout_duration), "--rollout-duration");
    if (!d) return report_error(d.error());
    auto start = repository::parse_release_info(
        {{"version", o.version}, {"rollout", {{"start", o.rollout_start}, {"duration", 0}}}});
    if (!start) return report_error(start.error());
    info.rollout = repository::Rollout{start->rollout->start,
                                       std::chrono::duration_cast<std::chrono::seconds>(*d).count()};
  }
  auto os_release = read_file(path_join(o.subvolume, "usr/lib/os-release"), 64 << 10);
  if (!os_release) os_release = read_file(path_join(o.subvolume, "etc/os-release"), 64 << 10);
  if (os_release) {
    size_t pos = 0;
    while (pos < os_release->size()) {
      size_t nl = os_release->find('\n', pos);
      std::string line = os_release->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? os_release->size() : nl + 1;
      auto eq = line.find('=');
      if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
      std::string v = line.substr(eq + 1);
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
      info.os_release[line.substr(0, eq)] = v;
    }
  }
  auto measured = measured_boot_of(o.subvolume);
  if (!measured) return report_error(measured.error());
  // Validate what we built the way a host will read it.
  if (auto check = repository::parse_release_info(repository::release_info_json(info)); !check)
    return report_error(check.error());

  std::vector<repository::ArtifactInput> inputs;
  if (!o.no_full) {
    auto full = send_input(o.subvolume, "", "");
    if (!full) return report_error(full.error());
    inputs.push_back(std::move(*full));
  }
  auto w = tuf::RepoWriter::open(o.dir, o.keys);
  if (!w) return report_error(w.error());
  // Without an explicit path, earlier versions are looked up beside the new subvolume.
  auto slash = o.subvolume.find_last_of('/');
  std::string siblings = slash == std::string::npos ? "." : o.subvolume.substr(0, slash);
  std::vector<std::string> delta_from = o.delta_from;
  std::vector<std::string> parents;
  for (size_t i = 0; i < o.delta_from.size(); ++i)
    parents.push_back(i < o.delta_from_subvolume.size() ? o.delta_from_subvolume[i] : path_join(siblings, o.delta_from[i]));
  if (o.deltas_from_last > 0) {
    auto last = repository::last_releases(*w, info.channel, info.version, o.deltas_from_last);
    if (!last) return report_error(with_context(Result<void>(tl::unexpected(last.error())), "--deltas-from-last").error());
    for (const auto& v : *last) {
      if (std::find(delta_from.begin(), delta_from.end(), v.str()) != delta_from.end()) continue;
      // The publisher keeps only some releases' subvolumes: hosts on a release without one take a
      // chain of deltas or the full stream.
      std::string parent = path_join(siblings, v.str());
      if (!path_exists(parent)) {
        std::cerr << "ballast: no delta from " << v.str() << ": its subvolume " << parent << " is not here\n";
        continue;
      }
      delta_from.push_back(v.str());
      parents.push_back(parent);
    }
  }
  for (size_t i = 0; i < delta_from.size(); ++i) {
    auto d = send_input(o.subvolume, parents[i], delta_from[i]);
    if (!d) return report_error(with_context(Result<void>(tl::unexpected(d.error())), "delta from " + delta_from[i]).error());
    inputs.push_back(std::move(*d));
  }
  repository::PackOptions pack = o.pack;
  if (o.zstd_level) {
    if (!o.full_level->count()) pack.full_zstd_level = o.zstd_level;
    if (!o.delta_level->count()) pack.zstd_level = o.zstd_level;
  }
  auto r = repository::publish_release(*w, info, inputs, pack, *measured);
  if (!r) return report_error(r.error());
  if (g.json) {
    nlohmann::json arts = nlohmann::json::array();
    for (const auto& a : r->manifest.artifacts)
      arts.push_back({{"from", str_or_empty(a.from)}, {"chunks", a.chunks.size()}, {"size", a.size}, {"usize", a.usize}});
    print_json({{"version", info.version.str()},
                {"artifacts", arts},
                {"measured_boot", *measured ? repository::measured_boot_json(**measured) : nlohmann::json(nullptr)},
                {"new_chunks", r->stats.new_chunks},
                {"new_bytes", r->stats.new_bytes},
                {"reused_chunks", r->stats.reused},
                {"targets_version", w->targets_version()}});
  } else {
    for (const auto& a : r->manifest.artifacts)
      std::cout << info.version.str() << (a.from ? " delta from " + a.from->str() : " full") << ": " << a.chunks.size()
                << " chunks, " << a.size << " bytes (" << a.usize << " uncompressed)\n";
    std::cout << r->stats.new_chunks << " new chunks, " << r->stats.new_bytes << " bytes stored, " << r->stats.reused
              << " chunks reused without compressing\n";
    if (*measured) {
      auto ready = (*measured)->pcr11_sha256.find(images::kPcr11Phases[std::size(images::kPcr11Phases) - 1]);
      if (ready != (*measured)->pcr11_sha256.end()) std::cout << "expected PCR 11 once booted: " << ready->second << "\n";
    }
  }
  return 0;
}

void setup_add(CLI::App& repo, VerbContext& ctx) {
  auto* cmd = repo.add_subcommand("add", "Publish a release: full stream plus deltas, chunked, compressed and signed");
  add_dir_and_keys(cmd);
  auto& o = opts();
  cmd->add_option("--version", o.version, "Version of the release")->required();
  cmd->add_option("--subvolume", o.subvolume, "Read-only subvolume holding the release's image")->required();
  cmd->add_option("--delta-from", o.delta_from, "Also publish a delta from this earlier release (repeatable)");
  cmd->add_option("--delta-from-subvolume", o.delta_from_subvolume,
                  "Read-only subvolume of the matching --delta-from release (repeatable, in the same order); "
                  "default: the sibling of --subvolume named after the version");
  cmd->add_option("--deltas-from-last", o.deltas_from_last,
                  "Also publish deltas from each of the last N releases of the channel that are not revoked, "
                  "their subvolumes looked up beside --subvolume by version (one that is not there is skipped "
                  "with a message)");
  cmd->add_option("--channel", o.channel, "Release channel")->capture_default_str();
  cmd->add_option("--cmdline", o.cmdline, "Extra kernel command line of the release");
  cmd->add_option("--rollout-start", o.rollout_start, "Start of the staged rollout (YYYY-MM-DDTHH:MM:SSZ)");
  cmd->add_option("--rollout-duration", o.rollout_duration, "Length of the staged rollout (e.g. 24h)")
      ->capture_default_str();
  cmd->add_flag("--barrier", o.barrier, "Hosts must stop at this release before moving past it");
  auto* pcr = cmd->add_option("--expected-pcr11", o.expected_pcr11,
                              "Publish this sha256 PCR 11 value (64 hex digits) for every boot phase instead of the one\n"
                              "predicted from the release's UKI (tests: a release whose measured boot must not match)");
  cmd->add_flag("--no-measured-boot", o.no_measured_boot, "Publish no expected PCR 11 value (hosts skip the check)")
      ->excludes(pcr);
  o.full_level = cmd->add_option("--full-level", o.pack.full_zstd_level,
                                 "zstd level of the full stream's chunks (installs, hosts beyond the deltas)")
                     ->check(CLI::Range(1, 22))
                     ->capture_default_str();
  o.delta_level = cmd->add_option("--delta-level", o.pack.zstd_level, "zstd level of the deltas' chunks")
                      ->check(CLI::Range(1, 22))
                      ->capture_default_str();
  cmd->add_option("--zstd-level", o.zstd_level, "zstd level of all chunks, unless --full-level/--delta-level say otherwise")
      ->check(CLI::Range(1, 22));
  cmd->add_option("--threads", o.pack.threads, "Compression threads (0: one per CPU)")->capture_default_str();
  cmd->add_flag("--no-full", o.no_full,
                "Publish only the deltas, no full stream: hosts with nothing to start from (installs, hosts beyond\n"
                "the deltas) take the newest earlier full stream and the chain of deltas after it. Refused when\n"
                "no delta starts from a release such a host reaches");
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_add(g); }; });
}

int run_revoke(const GlobalOptions& g) {
  auto w = tuf::RepoWriter::open(opts().dir, opts().keys);
  if (!w) return report_error(w.error());
  auto version = Version::parse(opts().version);
  if (!version) return report_error(version.error());
  auto unreachable = repository::revoke_release(*w, *version);
  if (!unreachable) return report_error(unreachable.error());
  nlohmann::json names = nlohmann::json::array();
  std::string list;
  for (const auto& v : *unreachable) {
    names.push_back(v.str());
    list += (list.empty() ? "" : ", ") + v.str();
  }
  if (!unreachable->empty())
    std::cerr << "ballast: warning: with " << version->str() << " revoked, a host with nothing installed reaches no route to "
              << list << " (no full stream, and no chain of deltas from an unrevoked one)"
              << ": publish a release with a full stream, or deltas from a release such a host reaches\n";
  return print_versions(g, *w, {{"unreachable_without_full", names}});
}

void setup_revoke(CLI::App& repo, VerbContext& ctx) {
  auto* cmd = repo.add_subcommand("revoke", "Mark a release revoked: hosts neither install it nor keep it staged. Never refused;\n"
                                               "warns of newer releases without a full stream that a new host can then not reach");
  add_dir_and_keys(cmd);
  cmd->add_option("--version", opts().version, "Version to revoke")->required();
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_revoke(g); }; });
}

int run_add_target(const GlobalOptions& g) {
  const auto& o = opts();
  nlohmann::json custom;
  if (!o.custom.empty()) {
    try {
      custom = nlohmann::json::parse(o.custom);
    } catch (const nlohmann::json::exception& e) {
      return report_error(Error{"repo.bad-custom", std::string("--custom is not JSON: ") + e.what(), 0, {}});
    }
  }
  auto w = tuf::RepoWriter::open(o.dir, o.keys);
  if (!w) return report_error(w.error());
  if (auto st = w->add_target_file(o.target_name, o.target_file, custom); !st) return report_error(st.error());
  if (auto st = w->commit(); !st) return report_error(st.error());
  return print_versions(g, *w);
}

void setup_add_target(CLI::App& repo, VerbContext& ctx) {
  auto* cmd = repo.add_subcommand("add-target", "Publish one file as a plain TUF target (new targets, snapshot, timestamp)");
  add_dir_and_keys(cmd);
  cmd->add_option("--name", opts().target_name, "Target name, a relative path")->required();
  cmd->add_option("--file", opts().target_file, "File holding the target's bytes")->required();
  cmd->add_option("--custom", opts().custom, "Custom metadata of the target, a JSON value");
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_add_target(g); }; });
}

using RepoSubcommand = void (*)(CLI::App& repo, VerbContext& ctx);
constexpr RepoSubcommand kRepoSubcommands[] = {setup_init, setup_add, setup_revoke, setup_timestamp, setup_rotate_root,
                                               setup_add_target, setup_repo_push};

void setup(VerbContext& ctx) {
  auto* repo = ctx.app.add_subcommand("repo", "Publish an update repository: keys, releases, signed metadata");
  repo->require_subcommand(1);
  for (auto sub : kRepoSubcommands) sub(*repo, ctx);
}

BALLAST_REGISTER_VERB(500, setup);

}  // namespace
}  // namespace ballast::cli
