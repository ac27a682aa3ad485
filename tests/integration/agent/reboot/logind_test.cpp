// The Rebooter against a private dbus-daemon carrying a fake org.freedesktop.login1.
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "agent/reboot/rebooter.hpp"
#include "common/fd.hpp"
#include "common/file.hpp"
#include "tests/integration/support/http_servers.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using namespace std::chrono_literals;

namespace {

bool accepts_connections(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  ballast::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd.get() >= 0 && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

// dbus-daemon on a socket in a private directory, stopped by the ChildProcess member.
struct PrivateBus {
  std::string dir;
  ballast::testing::ChildProcess proc;

  PrivateBus() {
    dir = make_temp_dir("ballast-bus").value();
    std::string conf =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>custom</type>\n"
        "  <listen>unix:path=" + dir + "/bus</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
        "    <allow send_destination=\"*\"/>\n    <allow receive_sender=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n";
    REQUIRE(write_file_atomic(dir + "/bus.conf", conf));
    auto p = ballast::testing::ChildProcess::spawn({"dbus-daemon", "--nofork", "--config-file=" + dir + "/bus.conf"});
    REQUIRE(p);
    proc = std::move(*p);
    // The socket file appears at bind(), before listen(): a client that comes in between is
    // refused (ECONNREFUSED), so wait until a connection is accepted.
    bool listening = false;
    for (int i = 0; i < 1000 && !(listening = accepts_connections(dir + "/bus")); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(listening);
  }
  ~PrivateBus() {
    proc.stop();
    (void)remove_tree(dir);
  }
  std::string address() const { return "unix:path=" + dir + "/bus"; }
};

// org.freedesktop.login1.Manager.Reboot(b) on /org/freedesktop/login1, served from a thread.
class FakeLogin1 {
 public:
  FakeLogin1(const std::string& address, bool deny) : deny_(deny) {
    REQUIRE(sd_bus_new(&bus_) >= 0);
    REQUIRE(sd_bus_set_address(bus_, address.c_str()) >= 0);
    REQUIRE(sd_bus_set_bus_client(bus_, 1) >= 0);
    REQUIRE(sd_bus_start(bus_) >= 0);
    REQUIRE(sd_bus_add_object_vtable(bus_, nullptr, "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                     kVtable, this) >= 0);
    REQUIRE(sd_bus_request_name(bus_, "org.freedesktop.login1", 0) >= 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        int r = sd_bus_process(bus_, nullptr);
        if (r < 0) break;
        if (r == 0) sd_bus_wait(bus_, 50'000);
      }
    });
  }
  ~FakeLogin1() {
    stop_ = true;
    thread_.join();
    sd_bus_flush_close_unref(bus_);
  }
  std::vector<bool> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  static int on_reboot(sd_bus_message* m, void* self_ptr, sd_bus_error* error) {
    auto* self = static_cast<FakeLogin1*>(self_ptr);
    int interactive = -1;
    int r = sd_bus_message_read(m, "b", &interactive);
    if (r < 0) return r;
    {
      std::lock_guard lock(self->mutex_);
      self->calls_.push_back(interactive != 0);
    }
    if (self->deny_) return sd_bus_error_set(error, "org.freedesktop.DBus.Error.AccessDenied", "reboot not permitted");
    return sd_bus_reply_method_return(m, "");
  }
  static const sd_bus_vtable kVtable[];

  sd_bus* bus_ = nullptr;
  bool deny_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<bool> calls_;
  std::thread thread_;
};

const sd_bus_vtable FakeLogin1::kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Reboot", "b", "", FakeLogin1::on_reboot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

RebooterOptions options(const std::string& dir, const std::string& bus, std::vector<std::string> fallback) {
  RebooterOptions o;
  o.run_dir = dir;
  o.bus_address = bus;
  o.fallback_argv = std::move(fallback);
  o.timeout = 10s;
  return o;
}

}  // namespace

TEST_CASE("reboot asks logind for a non-interactive Reboot and does not run the fallback") {
  PrivateBus bus;
  FakeLogin1 login1(bus.address(), false);
  SystemRebooter r(options(bus.dir, bus.address(), {"touch", bus.dir + "/fallback-ran"}));
  REQUIRE(r.reboot());
  CHECK(login1.calls() == std::vector<bool>{false});
  CHECK_FALSE(path_exists(bus.dir + "/fallback-ran"));
}

TEST_CASE("when logind is not on the bus, reboot falls back to the command") {
  PrivateBus bus;
  SystemRebooter r(options(bus.dir, bus.address(), {"touch", bus.dir + "/fallback-ran"}));
  REQUIRE(r.reboot());
  CHECK(path_exists(bus.dir + "/fallback-ran"));
}

TEST_CASE("when logind refuses and the fallback fails, the error names both reasons") {
  PrivateBus bus;
  FakeLogin1 login1(bus.address(), true);
  SystemRebooter r(options(bus.dir, bus.address(), {"false"}));
  auto st = r.reboot();
  REQUIRE_FALSE(st);
  CHECK(login1.calls() == std::vector<bool>{false});
  CHECK(st.error().code == "reboot.failed");
  CHECK(st.error().message.find("reboot not permitted") != std::string::npos);
  CHECK(st.error().message.find("AccessDenied") != std::string::npos);
  CHECK(st.error().message.find("false") != std::string::npos);
}
