#include "agent/reboot/rebooter.hpp"

#include <systemd/sd-bus.h>

#include <cstring>

#include "common/file.hpp"
#include "common/log.hpp"
#include "common/process.hpp"

namespace ballast::agent::reboot {

namespace {

struct BusRef {
  sd_bus* bus = nullptr;
  ~BusRef() { sd_bus_flush_close_unref(bus); }
};

struct ErrorRef {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~ErrorRef() { sd_bus_error_free(&e); }
};

struct MessageRef {
  sd_bus_message* m = nullptr;
  ~MessageRef() { sd_bus_message_unref(m); }
};

}  // namespace

Status SystemRebooter::announce(const std::string& version) {
  if (version.empty() || version.find_first_of("\n\r") != std::string::npos)
    return fail("reboot.bad-version", "cannot announce a reboot for version \"" + version + "\"");
  BALLAST_CHECK(with_context(write_file_atomic(path_join(options_.run_dir, "reboot-required.pkgs"), "ballast=" + version + "\n"),
                             "announcing the reboot"));
  BALLAST_CHECK(with_context(write_file_atomic(path_join(options_.run_dir, "reboot-required"),
                                               "*** System restart required ***\n"),
                             "announcing the reboot"));
  return ok();
}

Status SystemRebooter::withdraw() {
  // The flag first, so it never points at a missing list.
  BALLAST_CHECK(remove_if_exists(path_join(options_.run_dir, "reboot-required")));
  BALLAST_CHECK(remove_if_exists(path_join(options_.run_dir, "reboot-required.pkgs")));
  return ok();
}

Status SystemRebooter::reboot_via_logind() {
  BusRef bus;
  int r;
  if (options_.bus_address.empty()) {
    r = sd_bus_open_system(&bus.bus);
  } else {
    r = sd_bus_new(&bus.bus);
    if (r >= 0) r = sd_bus_set_address(bus.bus, options_.bus_address.c_str());
    if (r >= 0) r = sd_bus_set_bus_client(bus.bus, 1);
    if (r >= 0) r = sd_bus_start(bus.bus);
  }
  if (r < 0) return fail_errno("reboot.logind", -r, "cannot connect to the bus");
  sd_bus_set_method_call_timeout(bus.bus, static_cast<uint64_t>(options_.timeout.count()) * 1000);
  ErrorRef error;
  MessageRef reply;
  r = sd_bus_call_method(bus.bus, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                         "Reboot", &error.e, &reply.m, "b", 0);
  if (r < 0) {
    std::string what = error.e.message ? error.e.message : std::strerror(-r);
    if (error.e.name) what += std::string(" (") + error.e.name + ")";
    return fail("reboot.logind", "login1 Reboot: " + what);
  }
  return ok();
}

Status SystemRebooter::reboot() {
  auto logind = reboot_via_logind();
  if (logind) return ok();
  if (options_.fallback_argv.empty())
    return fail("reboot.failed", "cannot reboot: logind: " + logind.error().describe() + "; no fallback command");
  log::warning("rebooting through logind failed, trying " + options_.fallback_argv.front() + ": " + logind.error().describe());
  auto proc = run_checked(options_.fallback_argv, SpawnOptions{.timeout = options_.timeout});
  if (proc) return ok();
  return fail("reboot.failed", "cannot reboot: logind: " + logind.error().describe() + "; " + options_.fallback_argv.front() +
                                   ": " + proc.error().describe());
}

Status SimulatedRebooter::reboot() {
  auto booted = with_context(boot::BootSimulator(paths_).reboot(), "simulated reboot");
  if (!booted) return tl::unexpected(booted.error());
  log::info("simulated reboot: booted " + booted->version.str() + " (entry " + booted->entry_id + ")");
  last_ = *booted;
  BALLAST_CHECK(announcer_.withdraw());
  if (on_rebooted_) on_rebooted_();
  return ok();
}

}  // namespace ballast::agent::reboot
