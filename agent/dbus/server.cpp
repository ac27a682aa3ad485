#include "agent/dbus/server.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <vector>

#include "agent/dbus/names.hpp"
#include "common/log.hpp"

namespace ballast::agent::dbus {
namespace {

// The status a property getter reports: during an emission the one the emission fetched, so a
// PropertiesChanged signal asks the AgentApi once, not once per property.
thread_local const AgentStatus* emitting_status = nullptr;

// The message is describe() without its " [code]" tail: the error name carries the code.
int reply_error(sd_bus_error* error, const Error& e) {
  std::string text = e.describe();
  std::string tail = " [" + e.code + "]";
  if (text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0)
    text.resize(text.size() - tail.size());
  return sd_bus_error_set(error, error_name_for_code(e.code).c_str(), text.c_str());
}

// Reads the Update() options dictionary.
Result<UpdateOptions> read_update_options(sd_bus_message* m) {
  UpdateOptions o;
  auto bad = [](const std::string& why) { return fail("agent.invalid-args", "Update options: " + why); };
  if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) return bad("expected a{sv}");
  for (;;) {
    int r = sd_bus_message_enter_container(m, 'e', "sv");
    if (r < 0) return bad("malformed entry");
    if (r == 0) break;
    const char* key = nullptr;
    if (sd_bus_message_read(m, "s", &key) < 0) return bad("malformed key");
    std::string k = key;
    bool* target = k == "download-only" ? &o.download_only : k == "apply" ? &o.apply : nullptr;
    if (!target) return bad("unknown option '" + k + "' (known: download-only, apply)");
    int value = 0;
    if (sd_bus_message_read(m, "v", "b", &value) < 0) return bad("'" + k + "' must be a boolean");
    *target = value != 0;
    if (sd_bus_message_exit_container(m) < 0) return bad("malformed entry");
  }
  if (sd_bus_message_exit_container(m) < 0) return bad("malformed dictionary");
  if (o.download_only && o.apply) return bad("download-only and apply exclude each other");
  return o;
}

}  // namespace

Server::Server(AgentApi& api, ServerOptions options)
    : api_(api), options_(std::move(options)), clock_(options_.clock ? *options_.clock : system_clock_) {}

Result<std::unique_ptr<Server>> Server::open(AgentApi& api, const ServerOptions& options) {
  std::unique_ptr<Server> s(new Server(api, options));
  s->bus_ = BALLAST_TRY(connect_bus(options.bus_address));
  int r = sd_bus_add_object_vtable(s->bus_, &s->slot_, kObjectPath, kInterface, vtable(), s.get());
  if (r < 0) return fail_errno("dbus.register", -r, std::string("cannot register ") + kObjectPath);
  if (options.request_name) {
    r = sd_bus_request_name(s->bus_, kBusName, 0);
    if (r < 0) return fail_errno("dbus.name", -r, std::string("cannot own the bus name ") + kBusName);
  }
  return s;
}

Server::~Server() {
  sd_bus_slot_unref(slot_);
  if (bus_) {
    sd_bus_flush(bus_);
    sd_bus_detach_event(bus_);
    sd_bus_flush_close_unref(bus_);
  }
}

std::string Server::unique_name() const {
  const char* name = nullptr;
  if (sd_bus_get_unique_name(bus_, &name) < 0 || !name) return "";
  return name;
}

Status Server::attach(sd_event* event) {
  int r = sd_bus_attach_event(bus_, event, SD_EVENT_PRIORITY_NORMAL);
  if (r < 0) return fail_errno("dbus.attach", -r, "cannot attach the bus to the event loop");
  return ok();
}

Result<bool> Server::process() {
  bool any = false;
  for (;;) {
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0) return fail_errno("dbus.process", -r, "processing bus messages");
    if (r == 0) return any;
    any = true;
  }
}

Result<bool> Server::caller_is_admin(sd_bus_message* m) {
  sd_bus_creds* creds = nullptr;
  // The uid comes from the bus daemon (trustworthy); the group list is augmented from /proc.
  int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS |
                                           SD_BUS_CREDS_EGID | SD_BUS_CREDS_AUGMENT, &creds);
  if (r < 0) return fail_errno("dbus.creds", -r, "cannot read the caller's credentials");
  uid_t uid = 0;
  if (sd_bus_creds_get_euid(creds, &uid) < 0 && sd_bus_creds_get_uid(creds, &uid) < 0) {
    sd_bus_creds_unref(creds);
    return false;
  }
  if (uid == 0) {
    sd_bus_creds_unref(creds);
    return true;
  }
  bool member = false;
  if (!options_.admin_group.empty()) {
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* found = nullptr;
    if (getgrnam_r(options_.admin_group.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found) {
      gid_t egid;
      if (sd_bus_creds_get_egid(creds, &egid) >= 0 && egid == found->gr_gid) member = true;
      const gid_t* gids = nullptr;
      int n = sd_bus_creds_get_supplementary_gids(creds, &gids);
      for (int i = 0; i < n && !member; ++i) member = gids[i] == found->gr_gid;
    }
  }
  sd_bus_creds_unref(creds);
  return member;
}

int Server::mutate(sd_bus_message* m, void* userdata, sd_bus_error* error, Status (*call)(Server&, sd_bus_message*)) {
  auto& self = *static_cast<Server*>(userdata);
  auto allowed = self.caller_is_admin(m);
  if (!allowed) return reply_error(error, allowed.error());
  if (!*allowed) {
    std::string who = self.options_.admin_group.empty() ? "root" : "root or members of group " + self.options_.admin_group;
    return sd_bus_error_setf(error, kAccessDenied, "only %s may call %s", who.c_str(), sd_bus_message_get_member(m));
  }
  auto st = call(self, m);
  if (!st) return reply_error(error, st.error());
  return sd_bus_reply_method_return(m, "");
}

int Server::method_check(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto& self = *static_cast<Server*>(userdata);
  auto admin = self.caller_is_admin(m);
  if (!admin) return reply_error(error, admin.error());
  auto now = self.clock_.monotonic();
  // Calls are served one at a time on the loop: callers that queued behind a running check
  // find its result here, as do those within the interval after it.
  bool fresh = self.last_check_ && now - self.last_check_->at < kUnprivilegedCheckInterval;
  if (*admin || !fresh) {
    self.last_check_ = LastCheck{now, self.api_.check()};
  } else {
    log::debug("dbus: answering Check with the result of " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - self.last_check_->at).count()) +
               " s ago (unprivileged caller)");
  }
  const auto& r = self.last_check_->result;
  if (!r) return reply_error(error, r.error());
  return sd_bus_reply_method_return(m, "s", r->dump().c_str());
}

int Server::method_history(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto& self = *static_cast<Server*>(userdata);
  auto r = self.api_.history();
  if (!r) return reply_error(error, r.error());
  return sd_bus_reply_method_return(m, "s", r->dump().c_str());
}

int Server::method_update(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return mutate(m, userdata, error, [](Server& s, sd_bus_message* msg) -> Status {
    auto o = BALLAST_TRY(read_update_options(msg));
    return s.api_.update(o);
  });
}

int Server::method_rollback(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return mutate(m, userdata, error, [](Server& s, sd_bus_message* msg) -> Status {
    int reboot = 0;
    if (sd_bus_message_read(msg, "b", &reboot) < 0) return fail("agent.invalid-args", "Rollback takes a boolean");
    return s.api_.rollback(reboot != 0);
  });
}

int Server::method_pin(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return mutate(m, userdata, error, [](Server& s, sd_bus_message* msg) -> Status {
    const char* version = nullptr;
    if (sd_bus_message_read(msg, "s", &version) < 0) return fail("agent.invalid-args", "Pin takes a version string");
    if (!*version) return fail("agent.invalid-args", "Pin needs a version; Unpin removes the pin");
    return s.api_.pin(version);
  });
}

int Server::method_unpin(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return mutate(m, userdata, error, [](Server& s, sd_bus_message*) { return s.api_.unpin(); });
}

int Server::method_bless(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return mutate(m, userdata, error, [](Server& s, sd_bus_message*) { return s.api_.bless(); });
}

int Server::get_property(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply,
                         void* userdata, sd_bus_error* error) {
  auto& self = *static_cast<Server*>(userdata);
  std::optional<AgentStatus> fetched;
  const AgentStatus* s = emitting_status;
  if (!s) {
    auto r = self.api_.status();
    if (!r) return reply_error(error, r.error());
    fetched = std::move(*r);
    s = &*fetched;
  }
  std::string p = property;
  const std::string* str = p == "State"           ? &s->state
                           : p == "BootedVersion" ? &s->booted
                           : p == "StagedVersion" ? &s->staged
                           : p == "TargetVersion" ? &s->target
                           : p == "Pinned"        ? &s->pinned
                           : p == "LastError"     ? &s->last_error
                           : p == "RebootHold"    ? &s->reboot_hold
                                                  : nullptr;
  if (str) return sd_bus_message_append(reply, "s", str->c_str());
  if (p == "LastCheck") return sd_bus_message_append(reply, "x", static_cast<int64_t>(s->last_check));
  if (p == "DroppedEvents") return sd_bus_message_append(reply, "t", static_cast<uint64_t>(s->dropped_events));
  if (p == "Progress") {
    const auto& g = s->progress;
    return sd_bus_message_append(reply, "(dttds)", g.percent, static_cast<uint64_t>(g.bytes),
                                 static_cast<uint64_t>(g.total_bytes), g.rate, g.message.c_str());
  }
  return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "no property %s", property);
}

bool Server::can_emit(std::string_view signal, std::string_view from, std::string_view to) const {
  if (sd_bus_is_open(bus_) > 0) return true;
  std::string what(signal);
  if (!from.empty() || !to.empty()) what += " " + std::string(from) + " -> " + std::string(to);
  log::debug("dbus: the bus connection is closed; not sent: " + what);
  return false;
}

void Server::on_transition(const std::string& from, const std::string& to) {
  if (!can_emit("StateChanged", from, to)) return;
  int r = sd_bus_emit_signal(bus_, kObjectPath, kInterface, "StateChanged", "ss", from.c_str(), to.c_str());
  if (r < 0) log::warning("dbus: cannot emit StateChanged: " + std::string(std::strerror(-r)));
  on_status_changed();
}

void Server::emit_properties_changed(std::string_view what, const char* const* names) {
  if (!can_emit(what)) return;
  auto s = api_.status();
  if (!s) return;
  emitting_status = &*s;
  // sd-bus takes the list as char** but does not write to it.
  int r = sd_bus_emit_properties_changed_strv(bus_, kObjectPath, kInterface, const_cast<char**>(names));
  emitting_status = nullptr;
  if (r < 0) log::warning("dbus: cannot emit PropertiesChanged: " + std::string(std::strerror(-r)));
}

void Server::on_status_changed() {
  static const char* const kEveryProperty[] = {"State",    "BootedVersion", "StagedVersion", "TargetVersion",
                                               "Pinned",   "LastError",     "RebootHold",    "LastCheck",
                                               "Progress", "DroppedEvents", nullptr};
  emit_properties_changed("PropertiesChanged", kEveryProperty);
}

void Server::on_progress(const Progress&) {
  static const char* const kProgress[] = {"Progress", nullptr};
  emit_properties_changed("PropertiesChanged Progress", kProgress);
}

const sd_bus_vtable* Server::vtable() {
  constexpr uint64_t emits = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
  // Every method is UNPRIVILEGED for sd-bus: the access rule is caller_is_admin's, not sd-bus's.
  constexpr uint64_t open = SD_BUS_VTABLE_UNPRIVILEGED;
  static const sd_bus_vtable table[] = {
      SD_BUS_VTABLE_START(0),
      SD_BUS_PROPERTY("State", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("BootedVersion", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("StagedVersion", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("TargetVersion", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("Pinned", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("LastError", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("RebootHold", "s", get_property, 0, emits),
      SD_BUS_PROPERTY("LastCheck", "x", get_property, 0, emits),
      SD_BUS_PROPERTY("Progress", "(dttds)", get_property, 0, emits),
      SD_BUS_PROPERTY("DroppedEvents", "t", get_property, 0, emits),
      SD_BUS_METHOD_WITH_NAMES("Check", "", , "s", SD_BUS_PARAM(result), method_check, open),
      SD_BUS_METHOD_WITH_NAMES("Update", "a{sv}", SD_BUS_PARAM(options), "", , method_update, open),
      SD_BUS_METHOD_WITH_NAMES("Rollback", "b", SD_BUS_PARAM(reboot), "", , method_rollback, open),
      SD_BUS_METHOD_WITH_NAMES("Pin", "s", SD_BUS_PARAM(version), "", , method_pin, open),
      SD_BUS_METHOD("Unpin", "", "", method_unpin, open),
      SD_BUS_METHOD("Bless", "", "", method_bless, open),
      SD_BUS_METHOD_WITH_NAMES("History", "", , "s", SD_BUS_PARAM(history), method_history, open),
      SD_BUS_SIGNAL_WITH_NAMES("StateChanged", "ss", SD_BUS_PARAM(from) SD_BUS_PARAM(to), 0),
      SD_BUS_VTABLE_END};
  return table;
}

}  // namespace ballast::agent::dbus
