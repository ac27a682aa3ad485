#include "agent/dbus/client.hpp"

#include <cerrno>
#include <cstdarg>
#include <cstring>

#include "agent/dbus/names.hpp"

namespace ballast::agent::dbus {
namespace {

Error error_from_bus(const sd_bus_error* e, int r, const char* method) {
  if (e && sd_bus_error_is_set(e)) {
    std::string name = e->name;
    std::string message = e->message ? e->message : name;
    if (name == SD_BUS_ERROR_SERVICE_UNKNOWN || name == SD_BUS_ERROR_NAME_HAS_NO_OWNER)
      return Error{"dbus.no-daemon", std::string("the ballast agent is not running (") + kBusName + " has no owner)", 0, {}};
    return Error{code_for_error_name(name), message, 0, {}};
  }
  int err = -r;
  if (err == ENOENT || err == ECONNREFUSED || err == ENOTCONN || err == ECONNRESET || err == EACCES)
    return Error{"dbus.connect", "cannot reach the bus to ask the ballast agent", err, {}};
  return Error{"dbus.call", std::string("calling ") + method, err, {}};
}

}  // namespace

bool is_not_running(const Error& e) { return e.code == "dbus.connect" || e.code == "dbus.no-daemon"; }

Result<std::unique_ptr<Client>> Client::connect(const std::string& address) {
  sd_bus* bus = BALLAST_TRY(connect_bus(address));
  return std::unique_ptr<Client>(new Client(bus));
}

Client::~Client() {
  sd_bus_slot_unref(signal_slot_);
  sd_bus_slot_unref(properties_slot_);
  sd_bus_slot_unref(owner_slot_);
  sd_bus_flush_close_unref(bus_);
}

Status Client::call(const char* method, sd_bus_message** reply, const char* types, ...) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  va_list ap;
  va_start(ap, types);
  int r = sd_bus_call_methodv(bus_, kBusName, kObjectPath, kInterface, method, &error, reply, types, ap);
  va_end(ap);
  if (r < 0) {
    Error e = error_from_bus(&error, r, method);
    sd_bus_error_free(&error);
    return tl::unexpected<Error>(std::move(e));
  }
  return ok();
}

Result<std::string> Client::call_for_string(const char* method) {
  sd_bus_message* reply = nullptr;
  BALLAST_CHECK(call(method, &reply, ""));
  const char* s = nullptr;
  int r = sd_bus_message_read(reply, "s", &s);
  std::string out = r >= 0 && s ? s : "";
  sd_bus_message_unref(reply);
  if (r < 0) return fail_errno("dbus.bad-reply", -r, std::string(method) + " answered without a string");
  return out;
}

Result<Progress> read_progress(sd_bus_message* m) {
  Progress p;
  uint64_t bytes = 0, total = 0;
  const char* message = nullptr;
  int r = sd_bus_message_read(m, "(dttds)", &p.percent, &bytes, &total, &p.rate, &message);
  if (r < 0) return fail_errno("dbus.bad-reply", -r, "Progress is not (dttds)");
  p.bytes = bytes;
  p.total_bytes = total;
  p.message = message ? message : "";
  return p;
}

Result<AgentStatus> Client::status() {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_, kBusName, kObjectPath, "org.freedesktop.DBus.Properties", "GetAll", &error,
                             &reply, "s", kInterface);
  if (r < 0) {
    Error e = error_from_bus(&error, r, "GetAll");
    sd_bus_error_free(&error);
    return tl::unexpected<Error>(std::move(e));
  }
  AgentStatus s;
  auto bad = [&](int rr) {
    sd_bus_message_unref(reply);
    return fail_errno("dbus.bad-reply", -rr, "the agent's properties do not have the expected types");
  };
  if ((r = sd_bus_message_enter_container(reply, 'a', "{sv}")) < 0) return bad(r);
  while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read(reply, "s", &key)) < 0) return bad(r);
    std::string k = key;
    std::string* str = k == "State"           ? &s.state
                       : k == "BootedVersion" ? &s.booted
                       : k == "StagedVersion" ? &s.staged
                       : k == "TargetVersion" ? &s.target
                       : k == "Pinned"        ? &s.pinned
                       : k == "LastError"     ? &s.last_error
                       : k == "RebootHold"    ? &s.reboot_hold
                                              : nullptr;
    if (str) {
      const char* v = nullptr;
      if ((r = sd_bus_message_read(reply, "v", "s", &v)) < 0) return bad(r);
      *str = v;
    } else if (k == "LastCheck") {
      int64_t v = 0;
      if ((r = sd_bus_message_read(reply, "v", "x", &v)) < 0) return bad(r);
      s.last_check = v;
    } else if (k == "DroppedEvents") {
      uint64_t v = 0;
      if ((r = sd_bus_message_read(reply, "v", "t", &v)) < 0) return bad(r);
      s.dropped_events = v;
    } else if (k == "Progress") {
      if ((r = sd_bus_message_enter_container(reply, 'v', "(dttds)")) < 0) return bad(r);
      auto p = read_progress(reply);
      if (!p) return bad(-EBADMSG);
      s.progress = *p;
      if ((r = sd_bus_message_exit_container(reply)) < 0) return bad(r);
    } else if ((r = sd_bus_message_skip(reply, "v")) < 0) {
      return bad(r);
    }
    if ((r = sd_bus_message_exit_container(reply)) < 0) return bad(r);
  }
  if (r < 0) return bad(r);
  sd_bus_message_unref(reply);
  if (s.state.empty()) return fail("dbus.bad-reply", "the agent reported no State");
  return s;
}

Result<nlohmann::json> Client::check() {
  auto text = BALLAST_TRY(call_for_string("Check"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail("dbus.bad-reply", "Check answered with text that is not JSON");
  return j;
}

Result<nlohmann::json> Client::history() {
  auto text = BALLAST_TRY(call_for_string("History"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail("dbus.bad-reply", "History answered with text that is not JSON");
  return j;
}

Status Client::update(const UpdateOptions& o) {
  return call("Update", nullptr, "a{sv}", 2, "download-only", "b", int(o.download_only), "apply", "b", int(o.apply));
}

Status Client::rollback(bool reboot) { return call("Rollback", nullptr, "b", int(reboot)); }
Status Client::pin(const std::string& version) { return call("Pin", nullptr, "s", version.c_str()); }
Status Client::unpin() { return call("Unpin", nullptr, ""); }
Status Client::bless() { return call("Bless", nullptr, ""); }

int Client::on_signal(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto& self = *static_cast<Client*>(userdata);
  const char *from = nullptr, *to = nullptr;
  if (sd_bus_message_read(m, "ss", &from, &to) < 0) return 0;
  AgentEvent e;
  e.kind = AgentEvent::Kind::transition;
  e.from = from;
  e.to = to;
  if (self.handler_) self.handler_(e);
  return 0;
}

int Client::on_properties(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto& self = *static_cast<Client*>(userdata);
  const char* iface = nullptr;
  if (sd_bus_message_read(m, "s", &iface) < 0 || std::strcmp(iface, kInterface) != 0) return 0;
  if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) return 0;
  while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
    const char* key = nullptr;
    if (sd_bus_message_read(m, "s", &key) < 0) return 0;
    if (std::strcmp(key, "Progress") == 0) {
      if (sd_bus_message_enter_container(m, 'v', "(dttds)") < 0) return 0;
      auto p = read_progress(m);
      if (!p) return 0;
      AgentEvent e;
      e.kind = AgentEvent::Kind::progress;
      e.progress = *p;
      if (self.handler_) self.handler_(e);
      if (sd_bus_message_exit_container(m) < 0) return 0;
    } else if (sd_bus_message_skip(m, "v") < 0) {
      return 0;
    }
    if (sd_bus_message_exit_container(m) < 0) return 0;
  }
  return 0;
}

int Client::on_owner(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto& self = *static_cast<Client*>(userdata);
  const char *name = nullptr, *old_owner = nullptr, *new_owner = nullptr;
  if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0) return 0;
  if (std::strcmp(name, kBusName) == 0 && (!new_owner || !*new_owner)) self.daemon_left_ = true;
  return 0;
}

Status Client::subscribe(EventHandler handler) {
  handler_ = std::move(handler);
  int r = 0;
  if (!signal_slot_)
    r = sd_bus_match_signal(bus_, &signal_slot_, nullptr, kObjectPath, kInterface, "StateChanged", on_signal, this);
  if (r >= 0 && !properties_slot_)
    r = sd_bus_match_signal(bus_, &properties_slot_, nullptr, kObjectPath, "org.freedesktop.DBus.Properties",
                            "PropertiesChanged", on_properties, this);
  if (r >= 0 && !owner_slot_)
    r = sd_bus_match_signal(bus_, &owner_slot_, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "NameOwnerChanged", on_owner, this);
  if (r < 0) return fail_errno("dbus.subscribe", -r, "cannot subscribe to the agent's signals");
  return ok();
}

Status Client::wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0) return fail_errno("dbus.no-daemon", -r, "lost the bus while following the agent");
    if (done()) return ok();
    if (daemon_left_) return fail("dbus.no-daemon", "the ballast agent left the bus");
    if (r > 0) continue;
    uint64_t usec = UINT64_MAX;
    if (timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return fail("dbus.timeout", "the agent did not reach the awaited state in time");
      usec = static_cast<uint64_t>(left.count());
    }
    r = sd_bus_wait(bus_, usec);
    if (r < 0) return fail_errno("dbus.no-daemon", -r, "lost the bus while following the agent");
  }
}

}  // namespace ballast::agent::dbus
