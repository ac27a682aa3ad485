// Host verbs: `ballast stage` (stage a release from a local send stream: the transaction the
// agent runs after fetching) and `ballast status` (booted, staged and rollback versions).
#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/host/retention.hpp"
#include "agent/host/stage.hpp"
#include "agent/host/status.hpp"

namespace ballast::cli {
namespace {

struct StageArgs {
  std::string version;
  std::string stream = "-";
  int tries = 0;
  bool no_retention = false;
};

int stage(const GlobalOptions& g, const StageArgs& a) {
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  auto boot = make_boot_control(g, *cfg);
  auto booted = boot->booted_version();
  host::StageContext ctx{host_layout(g), *boot, g.state_dir, booted ? *booted : ""};
  host::StageRequest req;
  req.version = a.version;
  req.tries = a.tries;
  req.open_stream = [&]() -> Result<std::unique_ptr<ByteSource>> {
    if (a.stream == "-") return std::unique_ptr<ByteSource>(new FdByteSource(0));
    return open_file_source(a.stream);
  };
  auto r = host::stage_release(ctx, req);
  if (!r) return report_error(r.error());
  if (!a.no_retention) {
    if (auto st = host::retain(ctx.host, *boot, ctx.booted_version, static_cast<int>(cfg->get_int("retention.keep"))); !st)
      return report_error(st.error());
  }
  if (g.json) {
    print_json({{"version", r->version}, {"kernelVersion", r->kernel_version}, {"options", r->entry_options},
                {"resumed", r->resumed}});
  } else {
    std::cout << "staged " << r->version << " (kernel " << r->kernel_version << ") with a trial boot entry\n";
    if (!r->resumed.empty()) {
      std::cout << "resumed: already complete:";
      for (const auto& s : r->resumed) std::cout << " " << s;
      std::cout << "\n";
    }
  }
  return 0;
}

int status(const GlobalOptions& g) {
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  auto boot = make_boot_control(g, *cfg);
  auto booted = boot->booted_version();
  auto s = host::read_host_status(host_layout(g), *boot, booted ? *booted : "");
  if (!s) return report_error(s.error());
  if (!booted) s->booted_error = booted.error().describe();
  if (g.json) print_json(host::status_to_json(*s));
  else std::cout << host::status_to_text(*s);
  return 0;
}

void setup(VerbContext& ctx) {
  static StageArgs args;
  auto* st = ctx.app.add_subcommand(
      "stage", "Stage a release from a local send stream: receive it into a slot, deploy it with the booted\n"
               "version's /etc changes, and write a trial boot entry (crash-safe; re-run to resume)");
  st->add_option("--version", args.version, "Release version (the stream's IMAGE_VERSION)")->required();
  st->add_option("-f,--stream", args.stream, "Send stream file, full or a delta from a local slot ('-': stdin)");
  st->add_option("--tries", args.tries, "Boot attempts of the trial entry (default: boot.tries)");
  st->add_flag("--no-retention", args.no_retention, "Keep every older version");
  st->callback([&ctx] { ctx.action = [&g = ctx.global] { return stage(g, args); }; });

  auto* status_cmd = ctx.app.add_subcommand("status", "Show the booted, staged and rollback versions (read-only)");
  status_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return status(g); }; });
}

BALLAST_REGISTER_VERB(100, setup);

}  // namespace
}  // namespace ballast::cli
