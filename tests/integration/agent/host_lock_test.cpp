// One writer per host, with real `ballast` processes on a sandbox host: a `ballast stage` held
// mid-receive (its stream is a FIFO the test feeds) holds the host lock while a second writer,
// readers and start-up recovery run against the same host. And a killed `ballast fetch` leaves
// debris that the next fetch into the same directory removes.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "agent/host/stage.hpp"
#include "common/file.hpp"
#include "common/host_lock.hpp"
#include "snapshot/receive.hpp"
#include "snapshot/subvolume.hpp"
#include "tests/integration/agent/sandbox_host.hpp"
#include "tests/integration/snapshot/tree_builders.hpp"
#include "tests/integration/support/ballast_cli.hpp"
#include "tests/integration/support/http_servers.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::version_literals;
using namespace ballast::testing;
using namespace std::chrono_literals;

namespace {

// `ballast ARGS...` started in the background, its stdout and stderr going to files.
struct Background {
  pid_t pid = -1;
  std::string out, err;
};

Background spawn_ballast(const std::vector<std::string>& args, const std::string& log_prefix) {
  Background b{-1, log_prefix + ".out", log_prefix + ".err"};
  std::vector<std::string> argv{kBallastExecutable};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  b.pid = ::fork();
  REQUIRE(b.pid >= 0);
  if (b.pid == 0) {
    int out = ::open(b.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(b.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  return b;
}

// The exit status of a background process; -1 when a signal ended it.
int wait_exit(const Background& b) {
  int status = 0;
  REQUIRE(::waitpid(b.pid, &status, 0) == b.pid);
  UNSCOPED_INFO("background ballast stderr: " + read_file(b.err).value_or(""));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Polls until `done` (a state another process reaches); fails the test after two minutes.
void wait_until(const std::function<bool()>& done, const std::string& what) {
  for (int i = 0; i < 12000; ++i) {
    if (done()) return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("never happened: " + what);
}

std::string receive_debris_in(const std::string& dir) {
  for (const auto& n : list_dir(dir).value_or(std::vector<std::string>{}))
    if (n.rfind(snapshot::kReceivePrefix, 0) == 0) return n;
  return "";
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    REQUIRE(n > 0);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// A `ballast stage` of `version` whose stream is a FIFO: it takes the host lock, cleans up, opens
// the FIFO and receives what the test writes, so the test decides how long it holds the lock.
struct HeldStage {
  SandboxHost& h;
  std::string data;
  Background proc;
  int fifo = -1;

  HeldStage(SandboxHost& host, const std::string& version, const std::string& stream) : h(host) {
    data = *read_file(stream);
    const std::string path = h.fs->base_dir() + "/stream.fifo";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    proc = spawn_ballast(with_host({"stage", "--version", version, "-f", path}), h.fs->base_dir() + "/held-stage");
    // Opens once the stage has taken the lock, cleaned up and opened its stream.
    wait_until([&] { return (fifo = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0; },
               "the held stage opens its stream");
    REQUIRE(::fcntl(fifo, F_SETFL, 0) == 0);
    // Half the stream: the live receive is under way in slots/.ballast-receive-*.
    write_all(fifo, std::string_view(data).substr(0, data.size() / 2));
    wait_until([&] { return !receive_debris_in(h.layout().slots_dir()).empty(); }, "the held stage receives");
  }
  std::vector<std::string> with_host(std::vector<std::string> args) const {
    std::vector<std::string> g{"--sysroot", h.top(), "--esp-path", h.esp, "--efivars-path", h.efivars,
                               "--state-dir", h.state, "--cmdline-path", h.cmdline, "--config-dir",
                               h.fs->base_dir() + "/no-config"};
    g.insert(g.end(), args.begin(), args.end());
    return g;
  }
  // Feeds the rest of the stream; returns the stage's exit status.
  int finish() {
    write_all(fifo, std::string_view(data).substr(data.size() / 2));
    ::close(fifo);
    fifo = -1;
    return wait_exit(proc);
  }
  ~HeldStage() {
    if (fifo >= 0) {
      ::close(fifo);
      ::kill(proc.pid, SIGKILL);
      ::waitpid(proc.pid, nullptr, 0);
    }
  }
};

}  // namespace

TEST_CASE("while one ballast stage writes the host a second fails at once naming it, and readers still run",
          "[host-lock]") {
  SandboxHost h;
  const std::string stream = h.publish("1.0");
  HeldStage first(h, "1.0", stream);
  const std::string live = receive_debris_in(h.layout().slots_dir());

  auto second = run_ballast(first.with_host({"stage", "--version", "1.0", "-f", stream}));
  CHECK(second.exit_code == 1);
  CHECK_THAT(second.err, Catch::Contains("[host.locked]"));
  CHECK_THAT(second.err, Catch::Contains("pid " + std::to_string(first.proc.pid) + " (stage)"));
  // The first stage's receive in progress is not taken for debris.
  CHECK(path_exists(h.layout().slots_dir() + "/" + live));

  // Readers never take the lock.
  CHECK(run_ballast(first.with_host({"--json", "status", "--bus-address", "unix:path=" + h.fs->base_dir() + "/no-bus"}))
            .success());
  CHECK(run_ballast(first.with_host({"--json", "boot", "list"})).success());

  CHECK(first.finish() == 0);
  CHECK(*snapshot::is_read_only(h.layout().slot("1.0"_v)));
  auto boot = boot::make_systemd_boot_control(h.paths);
  CHECK(entry_ids(*boot).size() == 1);
  // Once it is done, the lock is free again.
  CHECK(run_ballast(first.with_host({"boot", "mark-bad", "1.0"})).success());
}

TEST_CASE("a writer started with --wait waits for the holder and then runs", "[host-lock]") {
  SandboxHost h;
  const std::string stream = h.publish("1.0");
  HeldStage first(h, "1.0", stream);

  auto waiter = spawn_ballast(first.with_host({"--wait", "stage", "--version", "1.0", "-f", stream}),
                              h.fs->base_dir() + "/waiter");
  // The kernel lists a process blocked on a lock with "->" in /proc/locks, by the file's inode.
  struct stat lock_file;
  REQUIRE(::stat(host_lock_path(h.state).c_str(), &lock_file) == 0);
  const std::string inode = ":" + std::to_string(lock_file.st_ino) + " ";
  wait_until(
      [&] {
        std::ifstream locks("/proc/locks");
        for (std::string line; std::getline(locks, line);)
          if (line.find("->") != std::string::npos && line.find(inode) != std::string::npos) return true;
        return false;
      },
      "the second stage waits for the lock");

  CHECK(first.finish() == 0);
  CHECK(wait_exit(waiter) == 0);
  // It ran after the first was done: everything was there already.
  CHECK_THAT(read_file(waiter.out).value_or(""), Catch::Contains("resumed: already complete: receive deploy boot-entry"));
  CHECK(*snapshot::is_read_only(h.layout().slot("1.0"_v)));
}

TEST_CASE("start-up recovery leaves debris alone while another process holds the host lock", "[host-lock]") {
  SandboxHost h;
  const std::string stream = h.publish("1.0");
  auto boot = boot::make_systemd_boot_control(h.paths);
  host::StageContext ctx{h.layout(), *boot, h.state, std::nullopt};
  HeldStage first(h, "1.0", stream);
  const std::string live = receive_debris_in(h.layout().slots_dir());
  // What an interrupted stage would leave, beside the live receive.
  REQUIRE(snapshot::create_subvolume(h.layout().partial_dir() + "/leftover"));

  auto skipped = host::recover_stage(ctx);
  REQUIRE(skipped);
  CHECK(skipped->empty());
  CHECK(path_exists(h.layout().partial_dir() + "/leftover"));
  CHECK(path_exists(h.layout().slots_dir() + "/" + live));

  REQUIRE(first.finish() == 0);
  auto removed = host::recover_stage(ctx);
  REQUIRE(removed);
  CHECK(*removed == std::vector<std::string>{"partial/leftover"});
  CHECK_FALSE(path_exists(h.layout().partial_dir() + "/leftover"));
}

TEST_CASE("a fetch killed mid-receive leaves a hidden subvolume that the next fetch into the directory removes",
          "[host-lock][fetch]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point(), base = (*fs)->base_dir();
  const std::string src = top + "/src", dst = top + "/dst", repo = base + "/repo", keys = base + "/keys",
                    state = base + "/state", slow = base + "/slow-config";
  for (const auto& d : {src, dst, slow}) REQUIRE(make_dirs(d));
  REQUIRE(run_checked({"btrfs", "-q", "subvolume", "create", src + "/work"}));
  build_tree_v1(src + "/work");
  write_image_version(src + "/work", "1.0");
  std::string noise(4u << 20, '\0');  // incompressible: the download takes seconds at the limit below
  std::mt19937 rng(7);
  for (auto& c : noise) c = static_cast<char>(rng());
  REQUIRE(write_file_atomic(src + "/work/noise", noise));
  REQUIRE(run_checked({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/1.0"}));
  REQUIRE(run_ballast({"repo", "init", repo, "--keys", keys}).success());
  REQUIRE(run_ballast({"repo", "add", repo, "--keys", keys, "--version", "1.0", "--subvolume", src + "/1.0",
                           "--zstd-level", "3"}).success());
  REQUIRE(write_file_atomic(slow + "/50-slow.toml", "[repository]\nmax_bandwidth = 262144\nparallel_fetches = 1\n"));
  auto server = FaultyHttpServer::start(repo);
  REQUIRE(server);
  auto fetch_args = [&](const std::string& config) {
    return std::vector<std::string>{"--state-dir", state, "--config-dir", config, "fetch", "--repo", (*server)->url(),
                                    "--root", repo + "/metadata/1.root.json", "--version", "1.0", dst};
  };

  auto killed = spawn_ballast(fetch_args(slow), base + "/killed-fetch");
  wait_until([&] { return !receive_debris_in(dst).empty(); }, "the fetch receives");
  ::kill(killed.pid, SIGKILL);
  CHECK(wait_exit(killed) == -1);
  const std::string debris = receive_debris_in(dst);
  REQUIRE_FALSE(debris.empty());
  REQUIRE(*snapshot::is_subvolume(dst + "/" + debris));

  auto next = run_ballast(fetch_args(base + "/no-config"));
  REQUIRE(next.success());
  CHECK_FALSE(path_exists(dst + "/" + debris));
  CHECK(receive_debris_in(dst).empty());
  CHECK(*snapshot::is_read_only(dst + "/1.0"));
}
