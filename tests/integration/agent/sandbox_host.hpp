// A sandbox host for integration tests of the agent: a loop-backed Btrfs holding the host's top
// level and an image build area, a directory ESP and efivars, images published as send streams.
#pragma once

#include <fcntl.h>

#include <catch2/catch.hpp>

#include "agent/host/stage.hpp"
#include "boot/boot_simulator.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "images/builder.hpp"
#include "snapshot/send.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/version_literal.hpp"

namespace ballast::testing {
using namespace ballast::version_literals;

// A sandbox host on a loop-backed Btrfs: a build area for images, the host's top level, a
// directory ESP and a directory of EFI variables.
struct SandboxHost {
  std::unique_ptr<LoopBtrfs> fs;
  std::string build, esp, efivars, state, cmdline;
  boot::BootPaths paths;

  explicit SandboxHost(uint64_t size = 1ull << 30) {
    LoopBtrfs::Options o;
    o.size_bytes = size;
    auto f = LoopBtrfs::create(o);
    REQUIRE(f);
    fs = std::move(*f);
    build = fs->mount_point() + "/build";
    esp = fs->base_dir() + "/esp";
    efivars = fs->base_dir() + "/efivars";
    state = fs->base_dir() + "/state";
    cmdline = fs->base_dir() + "/cmdline";
    for (auto* d : {&build, &esp, &efivars, &state}) REQUIRE(make_dirs(*d));
    paths.esp_path = esp;
    paths.efivars_path = efivars;
    paths.cmdline_path = cmdline;
  }
  std::string top() const { return fs->mount_point(); }
  snapshot::HostLayout layout() const { return snapshot::HostLayout(top()); }

  // Builds images/minimal.toml at `version` (with a UKI when `uki`, and `files` added) and writes
  // its send stream (a delta when `parent`).
  std::string publish(const std::string& version, const std::string& parent = "", bool uki = false,
                      const std::vector<images::FileSpec>& files = {}) {
    auto def = images::load_definition(std::string(BALLAST_SOURCE_ROOT) + "/images/minimal.toml");
    REQUIRE(def);
    def->kernel.uki = uki;
    def->files.push_back(images::FileSpec{"/etc/release-note", "this is " + version + "\n", "", 0644, 0, 0});
    def->files.insert(def->files.end(), files.begin(), files.end());
    images::BuildOptions opts;
    opts.version = make_version(version);
    opts.output = build + "/minimal-" + version;
    opts.source_date_epoch = 1700000000;
    REQUIRE(images::build_image(*def, opts));
    std::string stream = fs->base_dir() + "/" + version + (parent.empty() ? ".full" : ".from-" + parent);
    UniqueFd out(::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(out);
    snapshot::SendOptions so;
    so.subvolume = opts.output;
    if (!parent.empty()) so.parent = build + "/minimal-" + parent;
    REQUIRE(snapshot::send(so, out.get()));
    return stream;
  }

  Result<host::StageResult> stage(boot::BootControl& boot, const std::string& version, const std::string& stream,
                                  const std::string& cmdline = "", host::EntryType type = host::EntryType::automatic) {
    auto booted = boot.booted_version();
    host::StageContext ctx{layout(), boot, state, value_if_ok(booted)};
    host::StageRequest req;
    req.version = make_version(version);
    req.cmdline = cmdline;
    req.entry_type = type;
    req.open_stream = [stream]() { return open_file_source(stream); };
    return host::stage_release(ctx, req);
  }

  // `ballast stage` as a separate process, so that it can be killed at a fault point.
  Result<ProcessResult> stage_cli(const std::string& version, const std::string& stream, const std::string& fault = "") {
    SpawnOptions o;
    if (!fault.empty()) o.extra_env.push_back("BALLAST_FAULT_AT=" + fault);
    return run_process({BALLAST_BUILD_ROOT "/agent/ballast", "--sysroot", top(), "--esp-path", esp, "--efivars-path", efivars,
                        "--state-dir", state, "--cmdline-path", cmdline, "--config-dir", fs->base_dir() + "/no-config",
                        "stage", "--version", version, "-f", stream},
                       o);
  }
};

inline std::vector<std::string> entry_ids(boot::BootControl& boot) {
  std::vector<std::string> ids;
  auto entries = boot.entries();
  REQUIRE(entries);
  for (const auto& e : *entries) ids.push_back(e.id);
  return ids;
}

// A first boot: stage, boot it through the simulated loader, bless it.
inline void install_first(SandboxHost& h, boot::BootControl& boot, const std::string& version) {
  auto staged = h.stage(boot, version, h.publish(version));
  if (!staged) FAIL(staged.error().describe());
  boot::BootSimulator sim(h.paths);
  auto booted = sim.reboot();
  REQUIRE(booted);
  REQUIRE(booted->version.str() == version);
  REQUIRE(boot.bless(make_version(version)));
}

}  // namespace ballast::testing
