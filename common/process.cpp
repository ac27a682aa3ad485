#include "common/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fd.hpp"

extern char** environ;

namespace ballast {

namespace {

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("process.pipe", errno, "cannot create pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string quote_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

}  // namespace

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) return fail("process.argv", "empty argv");
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  // An extra variable replaces an inherited one of the same name: with both in the block, getenv()
  // in the child would find the inherited one first.
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    bool replaced = std::any_of(opts.extra_env.begin(), opts.extra_env.end(),
                                [&](const std::string& x) { return name_of(x) == name_of(entry); });
    if (!replaced) env_storage.emplace_back(entry);
  }
  for (const auto& e : opts.extra_env) env_storage.push_back(e);
  std::vector<char*> cenv;
  for (auto& e : env_storage) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  struct ActionsGuard {
    posix_spawn_file_actions_t* a;
    ~ActionsGuard() { posix_spawn_file_actions_destroy(a); }
  } guard{&actions};

  Pipe in, out, err;
  if (opts.stdin_data) {
    in = BALLAST_TRY(make_pipe());
    posix_spawn_file_actions_adddup2(&actions, in.read.get(), 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  if (opts.capture_stdout) {
    out = BALLAST_TRY(make_pipe());
    posix_spawn_file_actions_adddup2(&actions, out.write.get(), 1);
  }
  if (opts.capture_stderr) {
    err = BALLAST_TRY(make_pipe());
    posix_spawn_file_actions_adddup2(&actions, err.write.get(), 2);
  }
  if (opts.cwd) posix_spawn_file_actions_addchdir_np(&actions, opts.cwd->c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dflt;
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGPIPE);
  sigaddset(&dflt, SIGINT);
  sigaddset(&dflt, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &dflt);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid;
  int rc = ::posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), cenv.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail_errno("process.spawn", rc, "cannot run " + argv[0]);
  in.read.reset();
  out.write.reset();
  err.write.reset();

  ProcessResult result;
  UniqueFd out_r = std::move(out.read), err_r = std::move(err.read), in_w = std::move(in.write);
  std::string_view to_write = opts.stdin_data ? std::string_view(*opts.stdin_data) : std::string_view();
  if (in_w && to_write.empty()) in_w.reset();
  if (in_w) ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  auto deadline = std::chrono::steady_clock::now() + opts.timeout;
  bool timed_out = false;
  bool too_large = false;
  char buf[65536];
  while (out_r || err_r || in_w) {
    pollfd pfds[3];
    nfds_t count = 0;
    if (out_r) pfds[count++] = {out_r.get(), POLLIN, 0};
    if (err_r) pfds[count++] = {err_r.get(), POLLIN, 0};
    if (in_w) pfds[count++] = {in_w.get(), POLLOUT, 0};
    int wait_ms = -1;
    if (opts.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int n = ::poll(pfds, count, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (nfds_t i = 0; i < count; ++i) {
      const pollfd& p = pfds[i];
      if (!p.revents) continue;
      if (in_w && p.fd == in_w.get()) {
        ssize_t w = ::write(p.fd, to_write.data(), to_write.size());
        if (w > 0) to_write.remove_prefix(static_cast<size_t>(w));
        if (w < 0 && errno != EAGAIN && errno != EINTR) to_write = {};
        if (to_write.empty()) in_w.reset();
        continue;
      }
      bool is_out = out_r && p.fd == out_r.get();
      ssize_t r = ::read(p.fd, buf, sizeof(buf));
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) {
        (is_out ? out_r : err_r).reset();
        continue;
      }
      std::string& dst = is_out ? result.out : result.err;
      if (dst.size() + static_cast<size_t>(r) > opts.max_output) too_large = true;
      else dst.append(buf, static_cast<size_t>(r));
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail_errno("process.wait", errno, "cannot wait for " + argv[0]);
  }
  if (timed_out)
    return fail("process.timeout", quote_argv(argv) + " did not finish within " +
                                       std::to_string(opts.timeout.count()) + " ms");
  if (too_large) return fail("process.output-too-large", quote_argv(argv) + " printed too much");
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  else result.exit_code = WEXITSTATUS(status);
  return result;
}

Result<ProcessResult> run_checked(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  auto r = BALLAST_TRY(run_process(argv, opts));
  if (!r.success()) {
    std::string why = r.signal ? "killed by signal " + std::to_string(r.signal)
                               : "exited with status " + std::to_string(r.exit_code);
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (auto nl = err.rfind('\n'); nl != std::string::npos) err = err.substr(nl + 1);
    return fail("process.failed", quote_argv(argv) + " " + why + (err.empty() ? "" : ": " + err));
  }
  return r;
}

}  // namespace ballast
