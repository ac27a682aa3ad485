#include "tests/integration/support/loop_btrfs.hpp"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "common/file.hpp"
#include "common/process.hpp"

namespace ballast::testing {

namespace {

std::mutex g_mu;
std::set<LoopBtrfs*> g_live;

void on_signal(int sig) {
  // Not async-signal-safe, deliberately: the process is about to die and a leaked loop device
  // outlives it, which is worse than a rare deadlock in a test run.
  std::vector<LoopBtrfs*> live(g_live.begin(), g_live.end());
  for (auto* f : live) f->teardown();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

std::string tmp_root() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

bool under_fixture_dir(const std::string& path) {
  std::string prefix = path_join(tmp_root(), kLoopFixturePrefix);
  return path.rfind(prefix, 0) == 0;
}

// Fixture directories are named ballast-loop-<pid>-XXXXXX; true when that process is gone.
bool owner_is_dead(const std::string& path) {
  std::string prefix = path_join(tmp_root(), kLoopFixturePrefix);
  if (path.rfind(prefix, 0) != 0) return false;
  pid_t pid = static_cast<pid_t>(std::atol(path.c_str() + prefix.size()));
  if (pid <= 0) return true;
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// mountinfo escapes spaces etc. as \ooo.
std::string unescape_mount_path(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<LoopBtrfs>> LoopBtrfs::create() { return create(Options{}); }

Result<std::unique_ptr<LoopBtrfs>> LoopBtrfs::create(const Options& opts) {
  install_handlers_once();
  std::unique_ptr<LoopBtrfs> f(new LoopBtrfs());
  {
    std::lock_guard lock(g_mu);
    g_live.insert(f.get());
  }
  f->base_dir_ = BALLAST_TRY(make_temp_dir(std::string(kLoopFixturePrefix) + std::to_string(::getpid())));
  f->image_ = path_join(f->base_dir_, "disk.img");
  f->mount_point_ = path_join(f->base_dir_, "mnt");
  BALLAST_CHECK(make_dirs(f->mount_point_));
  {
    std::ofstream img(f->image_);
    if (!img) return fail("test.loop", "cannot create " + f->image_);
  }
  if (::truncate(f->image_.c_str(), static_cast<off_t>(opts.size_bytes)) != 0)
    return fail_errno("test.loop", errno, "cannot size " + f->image_);
  auto lo = BALLAST_TRY(run_checked({"losetup", "--find", "--show", f->image_}));
  f->device_ = trim(lo.out);
  std::vector<std::string> mkfs = {"mkfs.btrfs", "-q", "-f"};
  mkfs.insert(mkfs.end(), opts.mkfs_args.begin(), opts.mkfs_args.end());
  mkfs.push_back(f->device_);
  BALLAST_CHECK(run_checked(mkfs));
  if (::mount(f->device_.c_str(), f->mount_point_.c_str(), "btrfs", 0,
              opts.mount_options.empty() ? nullptr : opts.mount_options.c_str()) != 0)
    return fail_errno("test.loop", errno, "cannot mount " + f->device_);
  f->mounted_ = true;
  return f;
}

void LoopBtrfs::teardown() {
  if (mounted_) {
    ::sync();
    if (::umount2(mount_point_.c_str(), 0) != 0) ::umount2(mount_point_.c_str(), MNT_DETACH);
    mounted_ = false;
  }
  if (!device_.empty()) {
    (void)run_process({"losetup", "--detach", device_});
    device_.clear();
  }
  if (!base_dir_.empty()) {
    (void)remove_tree(base_dir_);
    base_dir_.clear();
  }
  std::lock_guard lock(g_mu);
  g_live.erase(this);
}

LoopBtrfs::~LoopBtrfs() { teardown(); }

std::vector<std::string> live_fixture_mounts() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, devno, root, mp;
    ss >> id >> parent >> devno >> root >> mp;
    mp = unescape_mount_path(mp);
    if (under_fixture_dir(mp)) out.push_back(mp);
  }
  return out;
}

std::vector<std::string> live_fixture_loop_devices() {
  std::vector<std::string> out;
  auto names = list_dir("/sys/block");
  if (!names) return out;
  for (const auto& n : *names) {
    if (n.rfind("loop", 0) != 0) continue;
    auto backing = read_file("/sys/block/" + n + "/loop/backing_file");
    if (!backing) continue;
    std::string b = trim(*backing);
    if (b.size() > 10 && b.substr(b.size() - 10) == " (deleted)") b.resize(b.size() - 10);
    if (under_fixture_dir(b)) out.push_back("/dev/" + n);
  }
  return out;
}

int sweep_stale_loop_fixtures() {
  auto mounts = live_fixture_mounts();
  std::sort(mounts.rbegin(), mounts.rend());  // deepest first
  for (const auto& m : mounts)
    if (owner_is_dead(m) && ::umount2(m.c_str(), 0) != 0) ::umount2(m.c_str(), MNT_DETACH);
  int detached = 0;
  for (const auto& dev : live_fixture_loop_devices()) {
    auto backing = read_file("/sys/block/" + dev.substr(5) + "/loop/backing_file");
    if (!backing || !owner_is_dead(trim(*backing))) continue;
    if (run_process({"losetup", "--detach", dev}).map([](const ProcessResult& r) { return r.success(); }).value_or(false))
      ++detached;
  }
  if (auto names = list_dir(tmp_root())) {
    for (const auto& n : *names) {
      std::string dir = path_join(tmp_root(), n);
      if (n.rfind(kLoopFixturePrefix, 0) != 0 || !owner_is_dead(dir)) continue;
      auto still = live_fixture_mounts();  // never delete through a mount that would not go
      if (std::none_of(still.begin(), still.end(), [&](const std::string& m) { return m.rfind(dir, 0) == 0; }))
        (void)remove_tree(dir);
    }
  }
  return detached;
}

}  // namespace ballast::testing
