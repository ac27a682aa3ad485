// `ballast send [-p PARENT] [-c CLONE_SRC]... [--proto N] [--compressed-data] [-f OUT] SUBVOL`:
// a Btrfs send stream of a read-only subvolume, as the publisher needs.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "agent/cli/verb.hpp"
#include "snapshot/send.hpp"

namespace ballast::cli {
namespace {

struct SendArgs {
  std::string parent, out, subvolume;
  std::vector<std::string> clone_sources;
  int proto = 0;
  bool compressed = false;
};

int run_send(const SendArgs& a) {
  snapshot::SendOptions opts{a.subvolume, a.parent, a.clone_sources, a.proto, a.compressed};
  if (a.out.empty() || a.out == "-") {
    if (::isatty(STDOUT_FILENO)) {
      std::fprintf(stderr, "ballast: not writing a send stream to a terminal; use -f or a pipe\n");
      return 2;
    }
    auto st = snapshot::send(opts, STDOUT_FILENO);
    return st ? 0 : report_error(st.error());
  }
  int fd = ::open(a.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return report_error(Error{"send.output", "cannot create " + a.out, errno, {}});
  auto st = snapshot::send(opts, fd);
  if (st && ::fsync(fd) != 0) st = fail_errno("send.output", errno, "cannot write " + a.out);
  ::close(fd);
  if (!st) {
    ::unlink(a.out.c_str());  // never leave a truncated stream that looks complete
    return report_error(st.error());
  }
  return 0;
}

void setup(VerbContext& ctx) {
  static SendArgs args;
  auto* cmd = ctx.app.add_subcommand("send", "Write a Btrfs send stream of a read-only subvolume");
  cmd->add_option("-p,--parent", args.parent, "Send an incremental stream against this read-only parent");
  cmd->add_option("-c,--clone-src", args.clone_sources, "Allow sharing extents with this subvolume; repeatable")
      ->allow_extra_args(false);
  cmd->add_option("--proto", args.proto, "Send-stream protocol: 1 or 2 (0 = the kernel's default)")
      ->check(CLI::Range(0, 2));
  cmd->add_flag("--compressed-data", args.compressed, "Send compressed extents as they are (protocol 2)");
  cmd->add_option("-f,--file", args.out, "Write the stream to OUT instead of stdout");
  cmd->add_option("SUBVOL", args.subvolume, "The read-only subvolume to send")->required();
  cmd->callback([&ctx] { ctx.action = [] { return run_send(args); }; });
}

BALLAST_REGISTER_VERB(310, setup);

}  // namespace
}  // namespace ballast::cli
