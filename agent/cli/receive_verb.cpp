// `ballast receive [-f FILE] DIR` and `ballast receive --dump [-f FILE]`: the native send-stream
// receiver, as a drop-in for `btrfs receive` that refuses to write outside the new subvolume.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>

#include "agent/cli/verb.hpp"
#include "common/byte_source.hpp"
#include "snapshot/receive.hpp"

namespace ballast::cli {
namespace {

struct ReceiveArgs {
  std::string file;
  std::string dir;
  std::string partial_dir;
  std::vector<std::string> clone_sources;
  bool dump = false;
  bool exact_atime = false;
};

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

int run_receive(const GlobalOptions& g, const ReceiveArgs& a) {
  std::unique_ptr<ByteSource> owned;
  FdByteSource stdin_source(STDIN_FILENO);
  ByteSource* in = &stdin_source;
  if (!a.file.empty() && a.file != "-") {
    auto f = open_file_source(a.file);
    if (!f) return report_error(f.error());
    owned = std::move(*f);
    in = owned.get();
  }
  if (a.dump) {
    if (!a.dir.empty()) {
      std::fprintf(stderr, "ballast: --dump takes no DIR (see 'ballast receive --help')\n");
      return 2;
    }
    auto st = snapshot::dump(*in, std::cout);
    if (!st) return report_error(st.error());
    return 0;
  }
  if (a.dir.empty()) {
    std::fprintf(stderr, "ballast: receive needs a DIR (see 'ballast receive --help')\n");
    return 2;
  }
  snapshot::ReceiveOptions opts;
  opts.dest_dir = a.dir;
  opts.partial_dir = a.partial_dir;
  opts.clone_sources = a.clone_sources;
  opts.exact_atime = a.exact_atime;
  // Interrupted, the receiver stops at the next command and deletes its partial subvolume
  // rather than dying with it half-built. (In `btrfs send | ballast receive`, ^C also ends the
  // sender, so a blocked read returns end-of-stream.)
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  opts.cancelled = [] { return g_stop.load(); };
  auto r = snapshot::receive(*in, opts);
  if (!r) return report_error(r.error());
  if (g.json) {
    print_json({{"path", r->path},
                {"name", r->name},
                {"received_uuid", r->received_uuid},
                {"ctransid", r->ctransid},
                {"parent", r->parent_path},
                {"version", r->version},
                {"bytes", r->bytes},
                {"commands", r->commands},
                {"atime_only_skipped", r->atime_only_skipped},
                {"atime_only_by_ctime", r->atime_only_by_ctime}});
  } else {
    std::printf("At subvol %s\n", r->path.c_str());
  }
  return 0;
}

void setup(VerbContext& ctx) {
  static ReceiveArgs args;
  auto* cmd = ctx.app.add_subcommand("receive", "Receive a Btrfs send stream into a new read-only subvolume");
  cmd->add_option("-f,--file", args.file, "Read the stream from FILE instead of stdin");
  cmd->add_flag("--dump", args.dump, "Print the stream's commands, one per line, without applying them");
  cmd->add_option("--partial-dir", args.partial_dir,
                  "Build the subvolume here and move it into DIR only once complete (same filesystem)");
  cmd->add_option("-C,--clone-src", args.clone_sources, "Also allow CLONE from this subvolume; repeatable")
      ->allow_extra_args(false);
  cmd->add_flag("--exact-atime", args.exact_atime,
               "Also apply a delta's time changes that leave an inode's mtime as it is (only its access "
               "time would move), as btrfs receive does; by default such an inode keeps its parent's atime");
  cmd->add_option("DIR", args.dir, "Directory in which the stream's subvolume is created");
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_receive(g, args); }; });
}

BALLAST_REGISTER_VERB(300, setup);

}  // namespace
}  // namespace ballast::cli
