#include "agent/host/stage.hpp"

#include <btrfsutil.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>

#include "agent/host/retention.hpp"
#include "common/file.hpp"
#include "common/host_lock.hpp"
#include "common/log.hpp"
#include "common/pe_file.hpp"
#include "images/uki.hpp"
#include "snapshot/receive.hpp"
#include "snapshot/send_stream.hpp"
#include "snapshot/subvolume.hpp"

namespace ballast::host {

namespace {

constexpr const char* kJournal = "stage.json";

Status journal(const StageContext& ctx, const std::string& version, const std::string& step) {
  BALLAST_CHECK(make_dirs(ctx.state_dir));
  nlohmann::json j{{"version", version}, {"step", step}};
  BALLAST_CHECK(write_file_atomic(path_join(ctx.state_dir, kJournal), j.dump() + "\n", 0644));
  if (const char* fault = std::getenv("BALLAST_FAULT_AT"); fault && step == fault) {
    log::warning("fault injection: killing the process at step " + step);
    ::raise(SIGKILL);
  }
  return ok();
}

Result<bool> slot_is_complete(const snapshot::HostLayout& host, const Version& version) {
  std::string slot = host.slot(version);
  if (!path_exists(slot)) return false;
  if (!BALLAST_TRY(snapshot::is_read_only(slot))) return false;
  return BALLAST_TRY(snapshot::image_version_of(slot)) == version.str();
}

Result<std::string> kernel_version_in(const std::string& tree) {
  auto mods = list_dir(tree + "/usr/lib/modules");
  if (!mods) return fail("stage.no-kernel", "the image has no /usr/lib/modules");
  std::vector<std::string> with_kernel;
  for (const auto& k : *mods)
    if (path_exists(tree + "/usr/lib/modules/" + k + "/vmlinuz")) with_kernel.push_back(k);
  if (with_kernel.size() != 1)
    return fail("stage.no-kernel", "the image must hold exactly one /usr/lib/modules/<kver>/vmlinuz, found " +
                                       std::to_string(with_kernel.size()));
  return with_kernel.front();
}

Status check_space(const StageContext& ctx, const StageRequest& req) {
  if (req.needed_bytes == 0) return ok();
  struct statvfs vfs;
  if (::statvfs(ctx.host.sysroot().c_str(), &vfs) != 0)
    return fail_errno("stage.space", errno, "cannot read free space of " + ctx.host.sysroot());
  uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  uint64_t needed = space_needed(req);
  if (free_bytes < needed)
    return fail("stage.no-space", "the Btrfs filesystem has " + std::to_string(free_bytes >> 20) + " MiB free; staging " +
                                      req.version.str() + " needs about " + std::to_string(needed >> 20) + " MiB");
  return ok();
}

// A received subvolume must be a read-only, received image of the release it claims to be.
Status check_received(const snapshot::ReceivedSubvolume& received, const Version& version) {
  if (received.received_uuid.empty() || !BALLAST_TRY(snapshot::is_read_only(received.path)))
    return fail("stage.bad-image", "the received subvolume is not read-only with a received UUID");
  return snapshot::check_image_version(received.path, version);
}

// The slot is received in place (slots/.ballast-receive-* renamed to slots/<v>), checked, and
// deleted again if it is not the release it claims to be. A chain's earlier releases come first,
// into scratch subvolumes that are deleted when this returns.
Status receive_into_slot(const StageContext& ctx, const StageRequest& req) {
  const std::string& v = req.version.str();
  std::vector<std::string> clone_sources;
  for (const auto& s : BALLAST_TRY(snapshot::list_slots(ctx.host))) clone_sources.push_back(ctx.host.slot(s));
  std::deque<snapshot::SubvolumeGuard> scratch;  // never committed: gone once the slot is made
  for (size_t i = 0; i < req.chain_before.size(); ++i) {
    const ChainStep& link = req.chain_before[i];
    BALLAST_CHECK(journal(ctx, v, "chain-link-" + std::to_string(i + 1)));
    auto stream = BALLAST_TRY(link.open_stream());
    snapshot::ReceiveOptions ro;
    ro.dest_dir = ctx.host.partial_dir();
    ro.name = "chain-" + link.version.str();
    ro.clone_sources = clone_sources;
    ro.progress = req.progress;
    auto received = BALLAST_TRY(with_context(snapshot::receive(*stream, ro), "receiving " + link.version.str() + " of the chain"));
    scratch.emplace_back(received.path);
    BALLAST_CHECK(with_context(check_received(received, link.version), "release " + link.version.str() + " of the chain"));
    clone_sources.push_back(received.path);
  }
  auto stream = BALLAST_TRY(req.open_stream());
  snapshot::ReceiveOptions ro;
  ro.dest_dir = ctx.host.slots_dir();
  ro.name = v;
  ro.clone_sources = clone_sources;
  ro.progress = req.progress;
  if (path_exists(ctx.host.slot(req.version))) BALLAST_CHECK(snapshot::delete_subvolume(ctx.host.slot(req.version)));
  auto received = BALLAST_TRY(snapshot::receive(*stream, ro));
  snapshot::SubvolumeGuard guard(received.path);

  BALLAST_CHECK(journal(ctx, v, "check"));
  BALLAST_CHECK(check_received(received, req.version));

  BALLAST_CHECK(journal(ctx, v, "slot"));
  BALLAST_CHECK(fsync_dir(ctx.host.slots_dir()));
  guard.commit();
  return ok();
}

}  // namespace

uint64_t space_needed(const StageRequest& req) {
  if (req.needed_bytes == 0) return 0;
  // Metadata and the deployment's /etc copy come on top of the stream's data.
  return req.needed_bytes + req.needed_bytes / 10 + (64ull << 20) + req.download_bytes;
}

Result<std::pair<std::string, std::string>> read_stage_journal(const std::string& state_dir) {
  auto text = read_file(path_join(state_dir, kJournal), 64 << 10);
  if (!text) {
    if (text.error().code == "io.not-found") return std::pair<std::string, std::string>{};
    return tl::unexpected(text.error());
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j["version"].is_string() || !j["step"].is_string())
    return fail("stage.journal", "the stage journal " + path_join(state_dir, kJournal) + " is unreadable");
  return std::pair<std::string, std::string>{j["version"], j["step"]};
}

Result<std::vector<std::string>> recover_stage(const StageContext& ctx) {
  // Debris is only debris when no other writer is at work: another process's partial/ and
  // .ballast-receive-* entries are its live work. Nests in the lock when this thread holds it.
  auto lock = HostLock::acquire(host_lock_path(ctx.state_dir), "recovery");
  if (!lock && lock.error().code == "host.locked") {
    log::notice("not cleaning up after an interrupted stage: " + lock.error().message);
    return std::vector<std::string>{};
  }
  if (!lock) return tl::unexpected(lock.error());
  BALLAST_CHECK(snapshot::ensure_layout(ctx.host));
  auto removed = BALLAST_TRY(snapshot::clean_partial(ctx.host));
  auto [version, step] = BALLAST_TRY(read_stage_journal(ctx.state_dir));
  if (!removed.empty() || (!step.empty() && step != "staged"))
    log::notice("recovered from an interrupted stage of " + version + " at step " + step + "; removed " +
                std::to_string(removed.size()) + " partial item(s)");
  return removed;
}

Result<StageResult> stage_release(const StageContext& ctx, const StageRequest& req) {
  // Held for the whole transaction; nests in the caller's lock (the CLI verb, the daemon's step).
  auto lock = BALLAST_TRY(HostLock::acquire(host_lock_path(ctx.state_dir), "stage"));
  BALLAST_CHECK(recover_stage(ctx));
  const std::string& v = req.version.str();
  if (req.version == ctx.booted_version)
    return fail("stage.booted", "version " + v + " is the booted one");
  StageResult result;
  result.version = req.version;

  BALLAST_CHECK(journal(ctx, v, "receive"));
  if (BALLAST_TRY(slot_is_complete(ctx.host, req.version))) {
    result.resumed.push_back("receive");
  } else {
    // A failed attempt's deleted subvolume frees its space only once the cleaner has run.
    BALLAST_CHECK(snapshot::wait_for_cleaned_subvolumes(ctx.host.sysroot()));
    BALLAST_CHECK(check_space(ctx, req));
    BALLAST_CHECK(with_context(receive_into_slot(ctx, req), "staging " + v));
  }

  BALLAST_CHECK(journal(ctx, v, "deploy"));
  if (path_exists(ctx.host.deployment(req.version))) {
    result.resumed.push_back("deploy");
  } else {
    snapshot::DeploymentOptions d;
    d.version = req.version;
    if (ctx.booted_version && path_exists(ctx.host.deployment(*ctx.booted_version)) &&
        path_exists(ctx.host.slot(*ctx.booted_version)))
      d.previous = ctx.booted_version;
    std::string fs_uuid = BALLAST_TRY(snapshot::filesystem_uuid(ctx.host.sysroot()));
    d.var_fstab = "UUID=" + fs_uuid + " /var btrfs subvol=@var 0 0";
    d.esp_fstab = req.esp_fstab;
    BALLAST_CHECK(with_context(snapshot::create_deployment(ctx.host, d), "deploying " + v));
  }

  BALLAST_CHECK(journal(ctx, v, "boot-entry"));
  std::string deployment = ctx.host.deployment(req.version);
  result.kernel_version = BALLAST_TRY(kernel_version_in(deployment));
  std::string fs_uuid = BALLAST_TRY(snapshot::filesystem_uuid(ctx.host.sysroot()));
  result.entry_options = "root=UUID=" + fs_uuid + " rootflags=subvol=" + snapshot::HostLayout::deployment_subvol(req.version) +
                         " ro ballast.version=" + v;
  std::string extra = req.cmdline;
  if (extra.empty())
    if (auto image_cmdline = read_file(deployment + "/usr/lib/kernel/cmdline", 4096)) extra = *image_cmdline;
  while (!extra.empty() && (extra.back() == '\n' || extra.back() == ' ')) extra.pop_back();
  if (!extra.empty()) result.entry_options += " " + extra;
  const std::string uki = deployment + images::kUkiPath;
  const bool use_uki = req.entry_type == EntryType::uki || (req.entry_type == EntryType::automatic && path_exists(uki));
  if (use_uki) {
    if (!path_exists(uki))
      return fail("stage.no-uki", "boot.entry_type is uki but release " + v + " has no UKI at " + images::kUkiPath);
    // The UKI's command line is sealed in it: that, not the Type #1 options, is what boots.
    auto sealed = BALLAST_TRY(with_context(pe::read_section_of_file(uki, ".cmdline"), "reading the UKI of " + v));
    if (!sealed) return fail("boot.bad-uki", "the UKI of release " + v + " has no .cmdline section");
    result.entry_options = *sealed;
  }
  bool have_entry = false;
  for (const auto& e : BALLAST_TRY(ctx.boot.entries()))
    if (e.version == req.version) have_entry = true;
  if (have_entry) {
    result.resumed.push_back("boot-entry");
  } else {
    boot::KernelSpec k;
    k.version = req.version;
    k.kernel_path = deployment + "/usr/lib/modules/" + result.kernel_version + "/vmlinuz";
    std::string initrd = deployment + "/usr/lib/modules/" + result.kernel_version + "/initrd.img";
    k.initrd_path = path_exists(initrd) ? initrd : "";
    k.options = result.entry_options;
    k.tries = req.tries;
    if (use_uki) k.uki_path = uki;
    BALLAST_CHECK(with_context(install_making_room(ctx.host, ctx.boot, ctx.booted_version, k),
                               "writing the boot entry of " + v));
  }
  BALLAST_CHECK(journal(ctx, v, "staged"));
  return result;
}

Result<repository::LocalSubvolume> local_subvolume(const std::string& path) {
  struct btrfs_util_subvolume_info info;
  auto e = btrfs_util_subvolume_info(path.c_str(), 0, &info);
  if (e != BTRFS_UTIL_OK)
    return fail("fetch.not-subvolume", path + " is not a Btrfs subvolume: " + btrfs_util_strerror(e));
  auto fmt = [](const uint8_t* b) {
    snapshot::stream::Uuid u;
    std::copy(b, b + 16, u.begin());
    return snapshot::stream::format_uuid(u);
  };
  repository::LocalSubvolume l;
  l.uuid = fmt(info.uuid);
  bool received = false;
  for (uint8_t b : info.received_uuid) received = received || b != 0;
  if (received) l.received_uuid = fmt(info.received_uuid);
  return l;
}

}  // namespace ballast::host
