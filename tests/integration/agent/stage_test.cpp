#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "agent/host/retention.hpp"
#include "agent/host/stage.hpp"
#include "agent/host/status.hpp"
#include "boot/boot_simulator.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "images/builder.hpp"
#include "snapshot/send.hpp"
#include "snapshot/subvolume.hpp"
#include "tests/integration/agent/sandbox_host.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/version_literal.hpp"

using namespace ballast::version_literals;

using namespace ballast;
using ballast::testing::LoopBtrfs;
using ballast::testing::SandboxHost;
using ballast::testing::entry_ids;
using ballast::testing::install_first;

TEST_CASE("a staged release has a read-only slot and deployment, a writable /etc and a trial entry") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  auto staged = h.stage(*boot, "1.0", h.publish("1.0"));
  REQUIRE(staged);
  auto layout = h.layout();
  CHECK(*snapshot::is_read_only(layout.slot("1.0"_v)));
  CHECK(*snapshot::is_read_only(layout.deployment("1.0"_v)));
  CHECK(*snapshot::is_subvolume(layout.deployment("1.0"_v) + "/etc"));
  CHECK_FALSE(*snapshot::is_read_only(layout.deployment("1.0"_v) + "/etc"));
  CHECK(write_file_atomic(layout.deployment("1.0"_v) + "/etc/hostname", "changed\n"));
  CHECK_FALSE(write_file_atomic(layout.deployment("1.0"_v) + "/usr/lib/x", "no"));  // / is read-only
  CHECK(path_exists(layout.var()));
  auto fstab = read_file(layout.deployment("1.0"_v) + "/etc/fstab");
  REQUIRE(fstab);
  CHECK_THAT(*fstab, Catch::Contains(" /var btrfs subvol=@var 0 0"));
  CHECK_THAT(staged->entry_options, Catch::Contains("rootflags=subvol=@ballast/deploy/1.0 ro ballast.version=1.0"));
  CHECK_THAT(staged->entry_options, Catch::EndsWith("console=ttyS0 quiet"));
  auto entries = boot->entries();
  REQUIRE(entries);
  REQUIRE(entries->size() == 1);
  CHECK(entries->front().state == boot::EntryState::indeterminate);
  CHECK(entries->front().tries_left == 3);
  CHECK(path_exists(h.esp + "/ballast/1.0/vmlinuz"));
  CHECK(list_dir(layout.partial_dir())->empty());
}

TEST_CASE("the release's signed kernel command line replaces the image's in the entry") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  auto staged = h.stage(*boot, "1.0", h.publish("1.0"), "console=hvc0 signed.flag=1\n");
  REQUIRE(staged);
  CHECK_THAT(staged->entry_options, Catch::EndsWith("ro ballast.version=1.0 console=hvc0 signed.flag=1"));
  CHECK_THAT(staged->entry_options, !Catch::Contains("quiet"));  // the image's own file is not appended
  auto entries = boot->entries();
  REQUIRE(entries);
  REQUIRE(entries->size() == 1);
  CHECK_THAT(entries->front().options, Catch::EndsWith("console=hvc0 signed.flag=1"));
}

TEST_CASE("a release with a UKI stages as a Type #2 entry of the UKI's bytes, booted after a Type #1 release", "[uki]") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  REQUIRE(h.stage(*boot, "1.0", h.publish("1.0")));
  boot::BootSimulator sim(h.paths);
  REQUIRE(sim.reboot());
  REQUIRE(boot->bless("1.0"_v));

  // The UKI's sealed command line, not the manifest's, is what a Type #2 entry boots.
  auto staged = h.stage(*boot, "2.0", h.publish("2.0", "1.0", true), "console=hvc0 signed.flag=1");
  REQUIRE(staged);
  const std::string uki = h.layout().deployment("2.0"_v) + images::kUkiPath;
  CHECK(staged->entry_options == images::uki_cmdline("2.0"_v, "console=ttyS0 quiet"));
  CHECK(*read_file(h.esp + "/EFI/Linux/ballast-2.0+3-0.efi") == *read_file(uki));
  CHECK_FALSE(path_exists(h.esp + "/ballast/2.0"));  // no kernel copy for a UKI
  CHECK(boot->entries()->front().version == "2.0"_v);
  CHECK(boot->entries()->front().uki);

  REQUIRE(sim.reboot()->version.str() == "2.0");
  CHECK(*read_file(h.cmdline) == images::uki_cmdline("2.0"_v, "console=ttyS0 quiet") + "\n");
  CHECK(*boot->booted_version() == "2.0"_v);
  REQUIRE(boot->bless("2.0"_v));
  CHECK(path_exists(h.esp + "/EFI/Linux/ballast-2.0.efi"));
}

TEST_CASE("boot.entry_type type1 stages a UKI release as Type #1 and uki refuses a release without one", "[uki]") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  REQUIRE(h.stage(*boot, "1.0", h.publish("1.0", "", true), "", host::EntryType::type1));
  CHECK(path_exists(h.esp + "/ballast/1.0/vmlinuz"));
  CHECK_FALSE(boot->entries()->front().uki);
  auto refused = h.stage(*boot, "2.0", h.publish("2.0"), "", host::EntryType::uki);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "stage.no-uki");
  CHECK(boot->entries()->size() == 1);
}

TEST_CASE("a delta stages on top of the booted version, carrying its /etc changes, and status shows it staged") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  install_first(h, *boot, "1.0");
  auto layout = h.layout();
  REQUIRE(write_file_atomic(layout.deployment("1.0"_v) + "/etc/motd", "admin's motd\n"));
  // A mount the admin (or the installer) added: 2.0 boots read-only, so its mount point must exist.
  auto fstab = read_file(layout.deployment("1.0"_v) + "/etc/fstab");
  REQUIRE(fstab);
  REQUIRE(write_file_atomic(layout.deployment("1.0"_v) + "/etc/fstab", *fstab + "UUID=ABCD-1234 /efi vfat umask=0077 0 2\n"));
  std::string delta = h.publish("2.0", "1.0");

  auto staged = h.stage(*boot, "2.0", delta);
  REQUIRE(staged);
  CHECK(*read_file(layout.deployment("2.0"_v) + "/etc/motd") == "admin's motd\n");          // local change carried
  CHECK(*read_file(layout.deployment("2.0"_v) + "/etc/release-note") == "this is 2.0\n");  // new image's file
  CHECK(*read_file(layout.slot("2.0"_v) + "/etc/release-note") == "this is 2.0\n");
  CHECK_THAT(*read_file(layout.deployment("2.0"_v) + "/etc/fstab"), Catch::Contains(" /efi vfat"));
  struct stat efi;
  CHECK((::stat((layout.deployment("2.0"_v) + "/efi").c_str(), &efi) == 0 && S_ISDIR(efi.st_mode)));

  auto status = host::read_host_status(layout, *boot, *boot->booted_version());
  REQUIRE(status);
  REQUIRE(status->booted);
  CHECK(status->booted->version.str() == "1.0");
  REQUIRE(status->staged);
  CHECK(status->staged->version.str() == "2.0");
  CHECK(status->staged->entry->state == boot::EntryState::indeterminate);
  auto j = host::status_to_json(*status);
  CHECK(j["kind"] == "BallastHost");
  CHECK(j["status"]["booted"]["image"]["version"] == "1.0");
  CHECK(j["status"]["staged"]["image"]["version"] == "2.0");
  CHECK(j["status"]["staged"]["bootEntry"]["state"] == "indeterminate");

  // The trial entry boots first.
  boot::BootSimulator sim(h.paths);
  auto next = sim.reboot();
  REQUIRE(next);
  CHECK(next->version.str() == "2.0");
}

TEST_CASE("a stream whose image version is not the release's is refused and leaves nothing behind") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  auto r = h.stage(*boot, "9.9", h.publish("1.0"));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "image.wrong-version");
  auto layout = h.layout();
  CHECK(list_dir(layout.slots_dir())->empty());
  CHECK(list_dir(layout.deploy_dir())->empty());
  CHECK(list_dir(layout.partial_dir())->empty());
  CHECK(entry_ids(*boot).empty());
}

TEST_CASE("a stage killed at any journaled step leaves the booted system untouched and completes on retry") {
  for (const char* step : host::kStageSteps) {
    DYNAMIC_SECTION("killed at " << step) {
      SandboxHost h;
      auto boot = boot::make_systemd_boot_control(h.paths);
      install_first(h, *boot, "1.0");
      auto before = entry_ids(*boot);
      std::string delta = h.publish("2.0", "1.0");

      auto killed = h.stage_cli("2.0", delta, step);
      REQUIRE(killed);
      CHECK(killed->signal == SIGKILL);
      // The booted deployment and its entry are untouched; an entry for 2.0 exists only when its
      // deployment is complete (the entry is written last).
      CHECK(*snapshot::is_read_only(h.layout().deployment("1.0"_v)));
      auto ids = entry_ids(*boot);
      CHECK(std::find(ids.begin(), ids.end(), before.front()) != ids.end());
      auto after_kill = boot->entries();
      REQUIRE(after_kill);
      for (const auto& e : *after_kill)
        if (e.version == "2.0"_v) CHECK(*snapshot::is_read_only(h.layout().deployment("2.0"_v)));

      auto retried = h.stage_cli("2.0", delta);
      REQUIRE(retried);
      INFO(retried->err);
      CHECK(retried->success());
      CHECK(list_dir(h.layout().partial_dir())->empty());
      CHECK(*snapshot::is_read_only(h.layout().slot("2.0"_v)));
      CHECK(*snapshot::is_read_only(h.layout().deployment("2.0"_v)));
      auto status = host::read_host_status(h.layout(), *boot, "1.0"_v);
      REQUIRE(status);
      REQUIRE(status->staged);
      CHECK(status->staged->version.str() == "2.0");
      CHECK(status->booted->version.str() == "1.0");
    }
  }
}

TEST_CASE("a stage that runs out of space midway is cleaned up and the booted system is untouched") {
  SandboxHost big;
  // An image with 300 MB of incompressible data, too large for the small host below.
  std::string payload = big.fs->base_dir() + "/payload";
  REQUIRE(make_dirs(payload + "/usr/share/big"));
  REQUIRE(run_checked({"dd", "if=/dev/urandom", "of=" + payload + "/usr/share/big/blob", "bs=1M", "count=300", "status=none"}));
  auto def = images::parse_definition("name = \"big\"\n[base]\nkind = \"directory\"\npath = \"" + payload +
                                          "\"\n[kernel]\nversion = \"k\"\nstand_in = true\n",
                                      big.fs->base_dir() + "/big.toml");
  REQUIRE(def);
  images::BuildOptions opts;
  opts.version = "2.0"_v;
  opts.output = big.build + "/big-2.0";
  REQUIRE(images::build_image(*def, opts));
  std::string stream = big.fs->base_dir() + "/big.full";
  {
    UniqueFd out(::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    snapshot::SendOptions so;
    so.subvolume = opts.output;
    REQUIRE(snapshot::send(so, out.get()));
  }

  SandboxHost small(256ull << 20);
  auto boot = boot::make_systemd_boot_control(small.paths);
  install_first(small, *boot, "1.0");
  auto r = small.stage(*boot, "2.0", stream);
  REQUIRE_FALSE(r);
  INFO(r.error().describe());
  CHECK(r.error().sys_errno == ENOSPC);
  CHECK(list_dir(small.layout().partial_dir())->empty());
  CHECK_FALSE(path_exists(small.layout().slot("2.0"_v)));
  CHECK(entry_ids(*boot).size() == 1);
  CHECK(*snapshot::is_read_only(small.layout().deployment("1.0"_v)));

  // With the manifest's size known, the stage is refused before anything is written.
  auto booted = boot->booted_version();
  host::StageContext ctx{small.layout(), *boot, small.state, *booted};
  host::StageRequest req;
  req.version = "2.0"_v;
  req.needed_bytes = 300ull << 20;
  req.open_stream = [stream]() { return open_file_source(stream); };
  auto refused = host::stage_release(ctx, req);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "stage.no-space");

  // `ballast stage -f` knows the stream file's size: refused before a byte is received.
  auto cli = small.stage_cli("2.0", stream);
  REQUIRE(cli);
  CHECK(cli->exit_code == 1);
  CHECK(cli->err.find("[stage.no-space]") != std::string::npos);
  CHECK(list_dir(small.layout().partial_dir())->empty());
  CHECK_FALSE(path_exists(small.layout().slot("2.0"_v)));
}

TEST_CASE("retention across five releases keeps the booted, staged and previous good versions only") {
  SandboxHost h;
  auto boot = boot::make_systemd_boot_control(h.paths);
  install_first(h, *boot, "1");
  boot::BootSimulator sim(h.paths);
  std::string prev = "1";
  for (const char* v : {"2", "3", "4", "5"}) {
    REQUIRE(h.stage(*boot, v, h.publish(v, prev)));
    auto booted = sim.reboot();
    REQUIRE(booted);
    REQUIRE(booted->version.str() == v);
    REQUIRE(boot->bless(make_version(v)));
    auto status = host::read_host_status(h.layout(), *boot, make_version(v));
    REQUIRE(status);
    auto plan = host::plan_retention(*status, 3, {});
    auto applied = host::apply_retention(h.layout(), *boot, plan);
    if (!applied) FAIL(applied.error().describe());
    prev = v;
  }
  // Booted 5, previous good 4, and one more good (3): keep = 3.
  CHECK(*snapshot::list_slots(h.layout()) == std::vector<Version>{"3"_v, "4"_v, "5"_v});
  CHECK(*snapshot::list_deployments(h.layout()) == std::vector<Version>{"3"_v, "4"_v, "5"_v});
  CHECK(entry_ids(*boot).size() == 3);
  CHECK_FALSE(path_exists(h.esp + "/ballast/1"));
  CHECK_FALSE(path_exists(h.esp + "/ballast/2"));
  CHECK(path_exists(h.esp + "/ballast/3/vmlinuz"));
}

namespace {

// A small tmpfs over the sandbox's ESP directory (vfat cannot be mounted here; statvfs and
// ENOSPC behave the same), unmounted before the sandbox goes.
struct SmallEsp {
  std::string dir;
  SmallEsp(std::string d, const std::string& size) : dir(std::move(d)) {
    REQUIRE(::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0755").c_str()) == 0);
  }
  ~SmallEsp() { ::umount2(dir.c_str(), MNT_DETACH); }
  uint64_t block() const {
    struct statvfs sv {};
    REQUIRE(::statvfs(dir.c_str(), &sv) == 0);
    return sv.f_frsize;
  }
  uint64_t free_bytes() const {
    struct statvfs sv {};
    REQUIRE(::statvfs(dir.c_str(), &sv) == 0);
    return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  }
  uint64_t blocks_of(const std::string& path) const {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return (static_cast<uint64_t>(st.st_size) + block() - 1) / block() * block();
  }
  // Leaves exactly `left` bytes free.
  void fill_leaving(uint64_t left) {
    REQUIRE(free_bytes() >= left);
    REQUIRE(write_file_atomic(dir + "/filler", std::string(free_bytes() - left, 'f')));
    REQUIRE(free_bytes() == left);
  }
};

// Booted 3 (blessed), 2 the rollback, 1 the oldest: a host with room to make on its ESP.
void three_releases(SandboxHost& h, boot::BootControl& boot) {
  install_first(h, boot, "1");
  boot::BootSimulator sim(h.paths);
  for (auto [v, prev] : {std::pair{"2", "1"}, std::pair{"3", "2"}}) {
    REQUIRE(h.stage(boot, v, h.publish(v, prev)));
    REQUIRE(sim.reboot()->version.str() == v);
    REQUIRE(boot.bless(make_version(v)));
  }
}

}  // namespace

TEST_CASE("a stage without room on the ESP has retention remove the oldest version first, then succeeds", "[esp-full]") {
  SandboxHost h;
  SmallEsp esp(h.esp, "4m");
  auto boot = boot::make_systemd_boot_control(h.paths);
  three_releases(h, *boot);
  // What 4 needs (its kernel files are the size of 3's) less one block: it fits only once 1's
  // files are gone.
  const uint64_t need = esp.blocks_of(h.esp + "/ballast/3/vmlinuz") + esp.blocks_of(h.esp + "/ballast/3/initrd.img") +
                        3 * esp.block();
  esp.fill_leaving(need - esp.block());

  auto staged = h.stage(*boot, "4", h.publish("4", "3"));
  if (!staged) FAIL(staged.error().describe());
  CHECK(*snapshot::list_deployments(h.layout()) == std::vector<Version>{"2"_v, "3"_v, "4"_v});
  CHECK(*snapshot::list_slots(h.layout()) == std::vector<Version>{"2"_v, "3"_v, "4"_v});
  CHECK(entry_ids(*boot) == std::vector<std::string>{"ballast-4+3-0.conf", "ballast-3.conf", "ballast-2.conf"});
  CHECK_FALSE(path_exists(h.esp + "/ballast/1"));
  CHECK(path_exists(h.esp + "/ballast/4/vmlinuz"));
}

TEST_CASE("a stage that cannot fit on the ESP even after retention fails with both sizes and writes nothing there",
          "[esp-full]") {
  SandboxHost h;
  SmallEsp esp(h.esp, "4m");
  auto boot = boot::make_systemd_boot_control(h.paths);
  three_releases(h, *boot);
  esp.fill_leaving(0);

  auto staged = h.stage(*boot, "4", h.publish("4", "3"));
  REQUIRE_FALSE(staged);
  INFO(staged.error().describe());
  CHECK(staged.error().code == "boot.esp-full");
  CHECK_THAT(staged.error().message, Catch::Matches("installing 4 needs [0-9]+ bytes on the ESP .*, but " + h.esp +
                                                    " has [0-9]+ bytes free"));
  CHECK_THAT(staged.error().describe(), Catch::Contains("removed 1"));
  // The running system's entries and files are as they were; nothing of 4 is on the ESP.
  CHECK(entry_ids(*boot) == std::vector<std::string>{"ballast-3.conf", "ballast-2.conf"});
  CHECK(path_exists(h.esp + "/ballast/3/vmlinuz"));
  CHECK(path_exists(h.esp + "/ballast/2/vmlinuz"));
  CHECK_FALSE(path_exists(h.esp + "/ballast/4"));
  for (const auto& dir : {h.esp + "/ballast", h.esp + "/loader/entries"}) {
    auto names = list_dir(dir);
    REQUIRE(names);
    for (const auto& name : *names) CHECK(name.find(".tmp") == std::string::npos);
  }
  CHECK(*snapshot::is_read_only(h.layout().deployment("3"_v)));
}
