// `ballast install`: a bootable host from a release, onto a disk image or into mounted targets.
#include <algorithm>
#include <cctype>
#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/daemon/ports.hpp"
#include "agent/host/install.hpp"
#include "common/file.hpp"

namespace ballast::cli {
namespace {

struct InstallArgs {
  std::string disk, size, stream, version, repo, root, format;
  bool force = false;
};

Result<uint64_t> parse_size(const std::string& text) {
  size_t pos = 0;
  uint64_t n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (...) {
    return fail("cli.bad-size", "not a size: \"" + text + "\" (examples: 4G, 512M)");
  }
  std::string unit = text.substr(pos);
  uint64_t mult = unit.empty() || unit == "B" ? 1
                  : unit == "K" || unit == "KiB" ? 1ull << 10
                  : unit == "M" || unit == "MiB" ? 1ull << 20
                  : unit == "G" || unit == "GiB" ? 1ull << 30
                                                 : 0;
  if (mult == 0) return fail("cli.bad-size", "not a size: \"" + text + "\" (examples: 4G, 512M)");
  return n * mult;
}

// --format when given, else the disk's suffix: NAME.vhd is a fixed VHD, anything else raw.
Result<host::DiskFormat> disk_format(const InstallArgs& a) {
  if (a.format == "raw") return host::DiskFormat::raw;
  if (a.format == "vhd") return host::DiskFormat::vhd;
  if (!a.format.empty()) return fail("cli.bad-format", "--format is raw or vhd, not \"" + a.format + "\"");
  const std::string suffix = ".vhd";
  bool named_vhd = a.disk.size() > suffix.size() &&
                   std::equal(suffix.rbegin(), suffix.rend(), a.disk.rbegin(),
                              [](char s, char d) { return s == std::tolower(static_cast<unsigned char>(d)); });
  return named_vhd ? host::DiskFormat::vhd : host::DiskFormat::raw;
}

int install(const GlobalOptions& g, const InstallArgs& a) {
  if (a.repo.empty() == a.stream.empty() || (!a.repo.empty() && a.root.empty()) || (!a.stream.empty() && a.version.empty())) {
    std::fprintf(stderr, "ballast: install takes either --repo URL --root ROOT.json [--version V], or -f STREAM --version V\n");
    return 2;
  }
  std::optional<Version> version;
  if (!a.version.empty()) {
    auto parsed = Version::parse(a.version);
    if (!parsed) return report_error(parsed.error());
    version = *parsed;
  }
  host::ReleaseSource release;
  std::string scratch;
  struct Scratch {
    std::string* dir;
    ~Scratch() {
      if (!dir->empty()) (void)remove_tree(*dir);
    }
  } scratch_guard{&scratch};
  if (!a.repo.empty()) {
    auto cfg = g.load_config();
    if (!cfg) return report_error(cfg.error());
    // The build machine's own state is not the new host's: trust and chunks live in a scratch dir.
    auto dir = make_temp_dir("ballast-install-state");
    if (!dir) return report_error(dir.error());
    scratch = *dir;
    GlobalOptions scratch_global = g;
    scratch_global.state_dir = scratch;
    auto req = release_request(scratch_global, *cfg, a.repo, a.root);
    req.version = version;
    SystemClock clock;
    // A host with nothing yet: the release's full stream, or an earlier release's full stream and
    // the deltas after it when that is cheaper or the release has no full stream.
    auto planned = agent::plan_request(req, "", clock);
    if (!planned) return report_error(planned.error());
    release.version = planned->plan.version;
    release.cmdline = planned->info.cmdline;
    release.needed_bytes = agent::chunks_of_plan(planned->links).usize;
    auto fetch = repository::fetch_options(req);
    for (size_t i = 0; i < planned->links.size(); ++i) {
      const auto& [link_version, artifact] = planned->links[i];
      auto open = [artifact = artifact, fetch]() -> Result<std::unique_ptr<ByteSource>> {
        return std::unique_ptr<ByteSource>(BALLAST_TRY(repository::open_artifact_stream(artifact, fetch)));
      };
      if (i + 1 < planned->links.size()) {
        release.chain_before.push_back(host::ChainStep{link_version, open});
      } else {
        release.open_stream = open;
      }
    }
    if (!g.json) std::cerr << "install: " << agent::describe_plan(planned->plan) << "\n";
  } else {
    release.version = *version;
    std::string stream = a.stream;
    release.open_stream = [stream]() { return open_file_source(stream); };
  }
  Result<host::InstallResult> r = fail("cli.usage", "");
  if (!a.disk.empty()) {
    host::InstallOptions o;
    o.disk = a.disk;
    o.force = a.force;
    auto format = disk_format(a);
    if (!format) return report_error(format.error());
    o.format = *format;
    if (!a.size.empty()) {
      auto size = parse_size(a.size);
      if (!size) return report_error(size.error());
      o.size = *size;
    }
    r = host::install_to_disk(o, release);
  } else {
    if (g.sysroot == "/" || g.esp_path == "/efi") {
      std::fprintf(stderr, "ballast: install needs --disk, or both --sysroot and --esp-path (see 'ballast install --help')\n");
      return 2;
    }
    auto lock = g.lock_host("install");
    if (!lock) return report_error(lock.error());
    r = host::install_to_targets(g.sysroot, g.esp_path, g.state_dir, "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
                                 release, "");
  }
  if (!r) return report_error(r.error());
  if (g.json) {
    print_json({{"version", r->version.str()}, {"rootUuid", r->root_uuid}, {"espUuid", r->esp_uuid}});
  } else {
    std::cout << "installed " << r->version.str() << ": Btrfs root " << r->root_uuid
              << (r->esp_uuid.empty() ? "" : ", ESP " + r->esp_uuid) << "\n";
  }
  return 0;
}

void setup(VerbContext& ctx) {
  static InstallArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "install",
      "Make a bootable host from a release: onto --disk (GPT, FAT32 ESP with systemd-boot, Btrfs root), or into\n"
      "already-mounted targets given by --sysroot and --esp-path; the release comes from --repo or -f STREAM");
  cmd->add_option("--disk", args.disk, "Disk or disk image file (created when missing; needs --size)");
  cmd->add_option("--size", args.size, "Size of a new disk image (e.g. 4G; a VHD's is rounded up to a whole MiB)");
  cmd->add_option("--format", args.format,
                  "Disk image format: raw, or vhd (a fixed VHD, as Azure takes); default: vhd when --disk ends in .vhd");
  cmd->add_flag("--force", args.force, "Overwrite a disk that already has a partition table");
  cmd->add_option("--repo", args.repo, "Update repository URL (https:// or file://) to install the release from");
  cmd->add_option("--root", args.root, "Trusted root.json of the repository");
  cmd->add_option("-f,--stream", args.stream, "Or: a local full send stream of the release");
  cmd->add_option("--version", args.version, "Release version (default with --repo: the newest on update.channel)");
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return install(g, args); }; });
}

BALLAST_REGISTER_VERB(150, setup);

}  // namespace
}  // namespace ballast::cli
