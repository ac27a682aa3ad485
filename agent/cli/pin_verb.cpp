// `ballast pin VERSION` / `ballast unpin`: hold the host at one version (older or newer; the
// planner follows a pin past channels, waves, barriers and the denylist). Written straight into
// the state dir, so it works whether or not the daemon runs; the daemon reads it at every check.
#include <iostream>

#include "agent/cli/verb.hpp"
#include "agent/daemon/pin.hpp"

namespace ballast::cli {
namespace {

int pin(const GlobalOptions& g, const std::string& text) {
  auto version = Version::parse(text);
  if (!version) return report_error(version.error());
  if (auto st = agent::write_pin(g.state_dir, *version); !st) return report_error(st.error());
  if (g.json) print_json({{"pinned", version->str()}});
  else std::cout << "pinned to " << version->str() << "\n";
  return 0;
}

int unpin(const GlobalOptions& g) {
  auto was = agent::read_pin(g.state_dir);
  if (auto st = agent::remove_pin(g.state_dir); !st) return report_error(st.error());
  if (g.json) print_json({{"pinned", nullptr}});
  else std::cout << (was && *was ? "unpinned (was " + (*was)->str() + ")" : std::string("nothing was pinned")) << "\n";
  return 0;
}

void setup(VerbContext& ctx) {
  static std::string version;
  auto* p = ctx.app.add_subcommand("pin", "Hold the host at VERSION (updates or goes back to it, then stays)");
  p->add_option("VERSION", version, "Release version")->required();
  p->callback([&ctx] { ctx.action = [&g = ctx.global] { return pin(g, version); }; });
  auto* u = ctx.app.add_subcommand("unpin", "Follow the channel again");
  u->callback([&ctx] { ctx.action = [&g = ctx.global] { return unpin(g); }; });
}

BALLAST_REGISTER_VERB(320, setup);

}  // namespace
}  // namespace ballast::cli
