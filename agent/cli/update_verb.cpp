// `ballast update`: asks the running agent to check (--check), or to update and follows it,
// drawing a progress bar on a terminal, plain progress lines otherwise, JSON lines with --json.
#include <sys/ioctl.h>
#include <unistd.h>

#include <iostream>

#include "agent/cli/verb.hpp"
#include "agent/cli/cli_agent.hpp"
#include "agent/dbus/view.hpp"

namespace ballast::cli {
namespace {

struct UpdateArgs {
  bool check = false;
  bool download_only = false;
  bool apply = false;
  std::string bus_address;
};

int terminal_width() {
  struct winsize ws {};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

int update(const GlobalOptions& g, const UpdateArgs& a) {
  auto client = connect_agent(a.bus_address);
  if (!client) return report_error(daemon_required(client.error(), "update"));
  auto& agent = **client;

  if (a.check) {
    auto r = agent.check();
    if (!r) return report_error(daemon_required(r.error(), "update --check"));
    if (g.json) {
      print_json(*r);
    } else if (r->contains("available") && (*r)["available"].is_string()) {
      std::cout << "update available: " << (*r)["available"].get<std::string>() << "\n";
    } else {
      std::cout << "no update available";
      if (r->contains("reason") && (*r)["reason"].is_string()) std::cout << ": " << (*r)["reason"].get<std::string>();
      std::cout << "\n";
    }
    return 0;
  }

  const bool bar = !g.json && isatty(STDOUT_FILENO);
  bool finished = false;
  std::string final_state;  // the state the flow came to rest in; the agent may have moved on since
  bool drew_bar = false;
  std::string last_plain;
  // Transitions re-announce Progress; only the staging step's progress is news.
  std::string state;
  auto end_bar = [&] {
    if (drew_bar) std::cout << "\n";
    drew_bar = false;
  };
  // Subscribed before Update() so the transitions the agent makes while answering are kept.
  auto sub = agent.subscribe([&](const agent::dbus::AgentEvent& e) {
    using Kind = agent::dbus::AgentEvent::Kind;
    if (e.kind == Kind::transition) {
      if (g.json) {
        std::cout << nlohmann::json{{"event", "transition"}, {"from", e.from}, {"to", e.to}}.dump() << "\n";
      } else {
        end_bar();
        std::cout << e.from << " -> " << e.to << "\n";
      }
      state = e.to;
      if (!finished && agent::dbus::update_finished(e.to, a.download_only)) {
        finished = true;
        final_state = e.to;
      }
    } else if (state != "staging") {
      return;
    } else if (g.json) {
      std::cout << nlohmann::json{{"event", "progress"}, {"progress", agent::to_json(e.progress)}}.dump() << "\n";
    } else if (bar) {
      std::cout << "\r\033[K" << agent::dbus::format_progress(e.progress, true, terminal_width() - 1);
      drew_bar = true;
    } else {
      // Pipes and logs get a line per whole percent or message change, not one per chunk.
      auto line = agent::dbus::format_progress(e.progress, false);
      agent::Progress rounded = e.progress;
      rounded.percent = static_cast<int>(rounded.percent);
      rounded.rate = 0;
      rounded.bytes = 0;
      auto key = agent::dbus::format_progress(rounded, false);
      if (key != last_plain) std::cout << line << "\n";
      last_plain = key;
    }
    std::cout.flush();
  });
  if (!sub) return report_error(daemon_required(sub.error(), "update"));

  agent::UpdateOptions o;
  o.download_only = a.download_only;
  o.apply = a.apply;
  if (auto st = agent.update(o); !st) return report_error(daemon_required(st.error(), "update"));
  if (auto st = agent.wait_until([&] { return finished; }); !st) {
    end_bar();
    return report_error(st.error());
  }
  end_bar();

  auto s = agent.status();
  if (!s) {
    // The reboot the update led to can take the agent down before or while it answers (a
    // simulated reboot ends it at once): that is the update going as asked.
    const bool gone = agent::dbus::is_not_running(s.error()) || s.error().code == "dbus.NoReply";
    if ((final_state == "waiting-to-reboot" || final_state == "rebooting") && gone) {
      if (g.json) std::cout << nlohmann::json{{"event", "done"}, {"state", "rebooting"}}.dump() << "\n";
      else std::cout << "rebooting into the update (the agent went down)\n";
      return 0;
    }
    return report_error(s.error());
  }
  if (g.json) std::cout << nlohmann::json{{"event", "done"}, {"status", agent::to_json(*s)}}.dump() << "\n";
  if (final_state == "failed" || final_state == "rolled-back")
    return report_error(Error{"agent.update-failed", "the update ended " + final_state + ": " + s->last_error, 0, {}});
  if (!g.json) {
    // After asking for the reboot the flow waits in verifying for the next boot.
    if (final_state == "waiting-to-reboot" && (s->state == "rebooting" || s->state == "verifying"))
      std::cout << "rebooting into " << (s->target.empty() ? s->staged : s->target) << "\n";
    else if (!s->staged.empty()) std::cout << "staged " << s->staged << "; state " << s->state << "\n";
    else std::cout << "state " << s->state << "\n";
  }
  return 0;
}

void setup(VerbContext& ctx) {
  static UpdateArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "update", "Ask the running agent to update now and follow it (progress, then the resulting state)");
  auto* check = cmd->add_flag("--check", args.check, "Only ask whether an update is available");
  auto* dl = cmd->add_flag("--download-only", args.download_only, "Stage the update but do not reboot into it");
  auto* apply = cmd->add_flag("--apply", args.apply, "Reboot into the update once staged, also outside a maintenance window or under the manual\n"
                              "strategy (under fleet_lock once the lock is granted)");
  check->excludes(dl)->excludes(apply);
  dl->excludes(apply);
  add_bus_address_option(cmd, args.bus_address);
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return update(g, args); }; });
}

BALLAST_REGISTER_VERB(310, setup);

}  // namespace
}  // namespace ballast::cli
