#include "tests/integration/agent/dbus/bus_fixture.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "common/file.hpp"

namespace ballast::test {

std::unique_ptr<PrivateBus> PrivateBus::start() {
  std::unique_ptr<PrivateBus> bus(new PrivateBus());
  auto dir = make_temp_dir("ballast-bus");
  if (!dir) throw std::runtime_error(dir.error().describe());
  bus->dir_ = *dir;
  // nobody must reach the socket for the refused-call tests.
  ::chmod(bus->dir_.c_str(), 0755);
  // Like the system bus (the default policy shared with the demo and the benchmarks): method calls
  // denied unless a policy allows them, owning names too; then the real policy from units/ is what
  // lets root own the name and everyone call it.
  std::string config = R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=)" + bus->dir_ + R"(/bus</listen>
  <auth>EXTERNAL</auth>
  <include>)" BALLAST_SOURCE_ROOT R"(/scripts/lib/system-bus-default-policy.conf</include>
  <include>)" BALLAST_SOURCE_ROOT R"(/units/dev.ballast.Agent1.conf</include>
</busconfig>
)";
  auto st = write_file_atomic(bus->dir_ + "/bus.conf", config);
  if (!st) throw std::runtime_error(st.error().describe());

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    // --print-address=3; dup2 clears CLOEXEC on the copy, and fd 3 itself needs it cleared by hand.
    if (pipefd[1] == 3) fcntl(3, F_SETFD, 0);
    else dup2(pipefd[1], 3);
    // Its complaints (no rlimit in a container, rejected messages) would bury the test output.
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    std::string conf = "--config-file=" + bus->dir_ + "/bus.conf";
    execlp("dbus-daemon", "dbus-daemon", conf.c_str(), "--print-address=3", "--nofork", "--nopidfile",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(pipefd[1]);
  bus->pid_ = pid;
  std::string out;
  char buf[512];
  while (out.find('\n') == std::string::npos) {
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  auto nl = out.find('\n');
  if (nl == std::string::npos) throw std::runtime_error("dbus-daemon printed no address");
  bus->address_ = out.substr(0, nl);
  return bus;
}

PrivateBus::~PrivateBus() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (!dir_.empty()) (void)remove_tree(dir_);
}

agent::AgentStatus FakeAgent::initial() {
  agent::AgentStatus s;
  s.state = "idle";
  s.booted = "1.0";
  s.last_check = 1700000000;
  return s;
}

void FakeAgent::record(const std::string& call) {
  std::lock_guard lock(mutex_);
  calls_.push_back(call);
}

std::vector<std::string> FakeAgent::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

agent::AgentStatus FakeAgent::snapshot() const {
  std::lock_guard lock(mutex_);
  return status_;
}

Result<agent::AgentStatus> FakeAgent::status() {
  std::lock_guard lock(mutex_);
  return status_;
}

Result<nlohmann::json> FakeAgent::check() {
  record("check");
  return nlohmann::json{{"available", "2.0"}, {"reason", "newer release on stable"}};
}

// The observer is called without the lock held: it reads status() back.
void FakeAgent::move_to(const std::string& to) {
  std::string from;
  {
    std::lock_guard lock(mutex_);
    from = status_.state;
    status_.state = to;
  }
  if (observer) observer->on_transition(from, to);
}

Status FakeAgent::update(const agent::UpdateOptions& o) {
  record(std::string("update download-only=") + (o.download_only ? "1" : "0") + " apply=" + (o.apply ? "1" : "0"));
  move_to("checking");
  {
    std::lock_guard lock(mutex_);
    status_.target = "2.0";
  }
  move_to("staging");
  for (uint64_t bytes : {uint64_t{1} << 20, uint64_t{3} << 20}) {
    agent::Progress p;
    p.bytes = bytes;
    p.total_bytes = uint64_t{4} << 20;
    p.percent = 100.0 * static_cast<double>(bytes) / static_cast<double>(p.total_bytes);
    p.rate = 1 << 20;
    p.message = "fetching 2.0";
    {
      std::lock_guard lock(mutex_);
      status_.progress = p;
    }
    if (observer) observer->on_progress(p);
  }
  if (late_progress_event && observer) {
    agent::Progress older;
    older.bytes = uint64_t{1} << 20;
    older.total_bytes = uint64_t{4} << 20;
    older.percent = 25;
    older.message = "fetching 2.0";
    observer->on_progress(older);
  }
  {
    std::lock_guard lock(mutex_);
    status_.staged = "2.0";
  }
  move_to("staged");
  move_to(o.apply ? "rebooting" : "waiting-to-reboot");
  return ok();
}

Status FakeAgent::rollback(bool reboot) {
  record(std::string("rollback reboot=") + (reboot ? "1" : "0"));
  return ok();
}

Status FakeAgent::pin(const std::string& version) {
  record("pin " + version);
  if (version == "9.9") return fail("agent.unknown-version", "no release 9.9 on channel stable");
  std::lock_guard lock(mutex_);
  status_.pinned = version;
  return ok();
}

Status FakeAgent::unpin() {
  record("unpin");
  std::lock_guard lock(mutex_);
  status_.pinned.clear();
  return ok();
}

Status FakeAgent::bless() {
  record("bless");
  return ok();
}

Result<nlohmann::json> FakeAgent::history() {
  record("history");
  return nlohmann::json::array({{{"time", 1700000000}, {"from", "0.9"}, {"target", "1.0"}, {"result", "committed"}}});
}

std::unique_ptr<ServerThread> ServerThread::start(agent::AgentApi& api, agent::dbus::ServerOptions options) {
  std::unique_ptr<ServerThread> t(new ServerThread());
  auto server = agent::dbus::Server::open(api, options);
  if (!server) throw std::runtime_error(server.error().describe());
  t->server_ = std::move(*server);
  t->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  sd_event* event = nullptr;
  if (sd_event_new(&event) < 0) throw std::runtime_error("sd_event_new");
  // The bus connection moves to the loop thread here, before that thread starts.
  auto st = t->server_->attach(event);
  if (!st) throw std::runtime_error(st.error().describe());
  sd_event_add_io(event, nullptr, t->stop_fd_, EPOLLIN,
                  [](sd_event_source* s, int, uint32_t, void*) { return sd_event_exit(sd_event_source_get_event(s), 0); },
                  nullptr);
  t->thread_ = std::thread([event] {
    sd_event_loop(event);
    sd_event_unref(event);
  });
  return t;
}

void ServerThread::stop_loop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof one) < 0) std::abort();
  thread_.join();
}

ServerThread::~ServerThread() {
  stop_loop();
  server_.reset();
  ::close(stop_fd_);
}

int run_as_nobody(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    gid_t g = 65534;
    if (setgroups(1, &g) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(120);
    _exit(body());
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> as_nobody(std::vector<std::string> argv, bool with_nogroup_supplementary) {
  std::vector<std::string> out{"setpriv", "--reuid=65534", "--regid=65534"};
  out.push_back(with_nogroup_supplementary ? "--groups=65534" : "--clear-groups");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace ballast::test
