#include "snapshot/receive.hpp"

#include <btrfsutil.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <unordered_set>

#include "common/file.hpp"
#include "common/log.hpp"
#include "snapshot/subvolume.hpp"

namespace ballast::snapshot {

using stream::Attr;
using stream::Cmd;
using stream::Command;
using stream::Uuid;

namespace {

constexpr uint64_t kMaxUnencoded = 1u << 20;  // the kernel's limit is 128 KiB per extent
constexpr size_t kMaxDeferredAttrs = 4096;
constexpr uint64_t kRootSubvolReadOnly = 1;  // BTRFS_ROOT_SUBVOL_RDONLY of the on-disk root item
constexpr size_t kMaxRootNames = 1u << 16;
constexpr size_t kDirCacheSize = 16;

Status sys(int r, std::string_view what, std::string_view path) {
  if (r == 0) return ok();
  return fail_errno("receive.io", errno, std::string(what) + " " + std::string(path));
}

std::string command_context(Cmd cmd, uint64_t offset) {
  return cmd_name(cmd) + stream::at_byte(offset);
}

bool is_top_level(std::string_view path) { return !path.empty() && path.find('/') == std::string_view::npos; }

// The directory holding `path` ("" for a top-level entry: the subvolume root).
std::string_view dir_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

bool earlier(const stream::Timespec& a, const stream::Timespec& b) {
  return a.sec < b.sec || (a.sec == b.sec && a.nsec < b.nsec);
}

std::string btrfs_util_message(enum btrfs_util_error e) {
  const char* s = btrfs_util_strerror(e);
  return s ? s : "libbtrfsutil error";
}

Status util_status(enum btrfs_util_error e, const std::string& code, const std::string& what) {
  if (e == BTRFS_UTIL_OK) return ok();
  return fail_errno(code, errno, what + ": " + btrfs_util_message(e));
}

// "/proc/self/fd/N/name": names one entry of a directory we hold, for the few calls (l*xattr)
// that have no *at form. The final component is never followed.
std::string fd_entry_path(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + (name.empty() ? "" : "/" + name);
}

// Keeps a path that refers to an inode valid across a rename of it or of an ancestor; false when
// the path no longer names that inode.
bool rebase_path(std::string& cached, std::string_view from, std::string_view to) {
  auto under = [&](std::string_view base) {
    return cached == base || (cached.size() > base.size() && cached.compare(0, base.size(), base) == 0 &&
                              cached[base.size()] == '/');
  };
  if (under(from)) {
    cached = std::string(to) + cached.substr(from.size());
    return true;
  }
  return !under(to);
}

struct SubvolInfo {
  std::string path;
  struct btrfs_util_subvolume_info info{};
};

// The mount point of the Btrfs filesystem that holds `path` (the longest btrfs mount prefix).
Result<std::string> btrfs_mount_of(const std::string& path) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return fail_errno("receive.dest", errno, "cannot resolve " + path);
  std::string target = real;
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return fail("receive.mountinfo", "cannot read /proc/self/mountinfo");
  std::string line, best;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mnt, tok;
    ls >> id >> parent >> devno >> root >> mnt;
    while (ls >> tok && tok != "-") {
    }
    std::string fstype;
    ls >> fstype;
    if (fstype != "btrfs") continue;
    // mountinfo escapes spaces etc. as \ooo
    std::string un;
    for (size_t i = 0; i < mnt.size(); ++i) {
      if (mnt[i] == '\\' && i + 3 < mnt.size()) {
        un += static_cast<char>(std::stoi(mnt.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        un += mnt[i];
      }
    }
    bool prefix = un == "/" || target == un || (target.compare(0, un.size(), un) == 0 && target[un.size()] == '/');
    if (prefix && un.size() >= best.size()) best = un;
  }
  if (best.empty()) return fail("receive.not-btrfs", path + " is not on a Btrfs filesystem");
  return best;
}

// Every subvolume reachable under the mount that holds `dir`, including the mounted one.
Result<std::vector<SubvolInfo>> list_subvolumes(const std::string& dir) {
  auto mnt = BALLAST_TRY(btrfs_mount_of(dir));
  std::vector<SubvolInfo> out;
  SubvolInfo top{mnt, {}};
  BALLAST_CHECK(util_status(btrfs_util_subvolume_info(mnt.c_str(), 0, &top.info), "receive.parent",
                            "cannot read subvolume info of " + mnt));
  out.push_back(top);
  btrfs_util_subvolume_iterator* it = nullptr;
  BALLAST_CHECK(util_status(btrfs_util_create_subvolume_iterator(mnt.c_str(), 0, 0, &it), "receive.parent",
                            "cannot list subvolumes under " + mnt));
  std::unique_ptr<btrfs_util_subvolume_iterator, void (*)(btrfs_util_subvolume_iterator*)> guard(
      it, btrfs_util_destroy_subvolume_iterator);
  for (;;) {
    char* p = nullptr;
    SubvolInfo s;
    auto e = btrfs_util_subvolume_iterator_next_info(it, &p, &s.info);
    if (e == BTRFS_UTIL_ERROR_STOP_ITERATION) break;
    if (e != BTRFS_UTIL_OK) return tl::unexpected<Error>(util_status(e, "receive.parent", "cannot list subvolumes under " + mnt).error());
    s.path = path_join(mnt, p);
    std::free(p);
    out.push_back(std::move(s));
  }
  return out;
}

bool uuid_eq(const uint8_t* a, const Uuid& b) { return std::memcmp(a, b.data(), 16) == 0; }

// A subvolume is the one a stream refers to (uuid + ctransid as the sender saw them): a received
// copy carries the sender's uuid as received_uuid and its ctransid as stransid; the original
// itself (same filesystem) carries them as uuid and ctransid.
enum class Match { none, wrong_transid, yes };
Match match_subvol(const struct btrfs_util_subvolume_info& i, const Uuid& uuid, uint64_t ctransid) {
  if (uuid_eq(i.received_uuid, uuid)) return i.stransid == ctransid ? Match::yes : Match::wrong_transid;
  if (uuid_eq(i.uuid, uuid)) return i.ctransid == ctransid ? Match::yes : Match::wrong_transid;
  return Match::none;
}

// Flags of FILEATTR are Btrfs inode flags; these are the ones with an FS_IOC_SETFLAGS equivalent.
struct FlagMap {
  uint64_t btrfs;
  long fs;
};
constexpr FlagMap kFileattrMap[] = {
    {1ull << 1, FS_NOCOW_FL},     {1ull << 3, FS_NOCOMP_FL},  {1ull << 5, FS_SYNC_FL},
    {1ull << 6, FS_IMMUTABLE_FL}, {1ull << 7, FS_APPEND_FL},  {1ull << 8, FS_NODUMP_FL},
    {1ull << 9, FS_NOATIME_FL},   {1ull << 10, FS_DIRSYNC_FL}, {1ull << 11, FS_COMPR_FL},
};

class Receiver {
 public:
  explicit Receiver(const ReceiveOptions& opts) : opts_(opts) {}
  ~Receiver() { abort(); }

  Result<ReceivedSubvolume> run(ByteSource& in);

 private:
  struct Dir {
    int fd = -1;
    UniqueFd owned;
    std::string name;
  };

  // A creation held back by one command: `btrfs send` makes every new inode under an orphan
  // name and renames it to its real path in the very next command, so creating it there
  // directly saves a rename (the most expensive metadata change on Btrfs).
  struct PendingCreate {
    Cmd cmd = Cmd::unspec;
    uint64_t offset = 0;  // of the creating command in the stream, for its errors
    std::string path;
    std::string target;  // symlink
    mode_t type = 0;     // mknod/mkfifo/mksock
    dev_t dev = 0;
  };

  Status apply(const Command& c, uint64_t offset);
  Status apply_command(const Command& c, uint64_t offset);
  Status defer_create(const Command& c, uint64_t offset);
  bool create_renamed(const Command& c);
  Status flush_pending();
  Status create_at(const PendingCreate& p, int dirfd, const std::string& name, std::string_view path);
  bool root_lacks(const std::string& name);
  void note_root_entry(std::string_view path, bool present);
  Status begin_subvol(const Command& c, bool snapshot);
  Status finish();
  void abort();

  Result<Dir> parent_of(std::string_view path, bool cacheable = true);
  Result<Dir> parent_of_named(std::string_view path, bool cacheable = true);
  Result<int> write_fd(std::string_view path);
  Result<UniqueFd> open_regular(int root, std::string_view path, int flags);
  Result<int> clone_source_root(const Uuid& uuid, uint64_t ctransid);
  void close_write() {
    write_fd_.reset();
    write_path_.clear();
  }
  void forget_paths_under(std::string_view from, std::string_view to);
  void note_mtime_changed(std::string_view path);
  void note_entries_changed(std::string_view path) { note_mtime_changed(dir_of(path)); }
  void rebase_changed(std::string_view from, std::string_view to);
  // The write file's descriptor when `path` names it (a regular file: no lookup, no stat), or -1.
  int open_write_fd(std::string_view path) const { return write_fd_ && path == write_path_ ? write_fd_.get() : -1; }

  Status do_write(int fd, uint64_t off, std::string_view data);
  Status do_clone(const Command& c);
  Status do_encoded_write(const Command& c);
  Status do_fileattr(const Command& c);
  Status do_xattr(const Command& c, bool set);

  const ReceiveOptions& opts_;
  UniqueFd dest_fd_, partial_fd_, subvol_fd_, parent_fd_;
  std::string tmp_name_;  // name of the partial subvolume in partial_fd_, set once it exists
  bool committed_ = false;
  ReceivedSubvolume result_;
  Uuid uuid_{};
  Uuid parent_uuid_{};
  bool have_subvol_ = false;
  std::vector<std::pair<SubvolInfo, UniqueFd>> extra_sources_;
  bool extra_loaded_ = false;

  // Parent directories of recent commands, most recently used first: a stream works through
  // a directory's entries and comes back to it after each subdirectory.
  struct CachedDir {
    std::string path;
    UniqueFd fd;
  };
  std::vector<CachedDir> dirs_;
  std::string write_path_;  // the file of consecutive WRITE/CLONE/TRUNCATE commands
  UniqueFd write_fd_;
  std::vector<std::pair<UniqueFd, long>> deferred_flags_;  // immutable/append: applied last
  std::optional<PendingCreate> pending_;
  // The names in the subvolume root, followed through every command once read, so that a
  // creation there is known to succeed without a lookup.
  enum class RootNames { unread, tracked, off };
  RootNames root_state_ = RootNames::unread;
  std::unordered_set<std::string> root_names_;
  std::vector<char> scratch_;
  // The sender's clock as far as the parent vouches for it: the newest ctime of its tree (the
  // stime it was received with; zero when unknown). An inode whose ctime in this stream is older
  // changed nothing but its atime since the parent was sent.
  stream::Timespec parent_newest_ctime_{};
  stream::Timespec newest_ctime_{};  // of this stream's utimes; recorded as the new stime
  // Paths (as of now) of inodes whose mtime this receive changed: written, created, or
  // directories whose entries changed. Their utimes are checked against the inode.
  bool track_changed_ = false;
  std::set<std::string, std::less<>> mtime_changed_;
};

void Receiver::abort() {
  if (committed_ || tmp_name_.empty()) return;
  close_write();
  dirs_.clear();
  deferred_flags_.clear();
  subvol_fd_.reset();
  auto e = btrfs_util_delete_subvolume_fd(partial_fd_.get(), tmp_name_.c_str(), 0);
  if (e != BTRFS_UTIL_OK)
    log::error("cannot delete the partial subvolume " + tmp_name_ + ": " + btrfs_util_message(e));
  tmp_name_.clear();
}

Result<Receiver::Dir> Receiver::parent_of(std::string_view path, bool cacheable) {
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return Dir{subvol_fd_.get(), {}, std::string(path)};
  std::string dir(path.substr(0, slash));
  std::string name(path.substr(slash + 1));
  if (cacheable) {
    auto hit = std::find_if(dirs_.begin(), dirs_.end(), [&](const CachedDir& d) { return d.path == dir; });
    if (hit != dirs_.end()) {
      std::rotate(dirs_.begin(), hit, hit + 1);
      return Dir{dirs_.front().fd.get(), {}, std::move(name)};
    }
  }
  // Stream paths never pass through symlinks; refusing them keeps a stream-made link from
  // redirecting anything, even within the subvolume.
  auto fd = BALLAST_TRY(open_beneath(subvol_fd_.get(), dir, O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS));
  if (!cacheable) {
    int raw = fd.get();
    return Dir{raw, std::move(fd), std::move(name)};
  }
  if (dirs_.size() >= kDirCacheSize) dirs_.pop_back();
  dirs_.insert(dirs_.begin(), CachedDir{std::move(dir), std::move(fd)});
  return Dir{dirs_.front().fd.get(), {}, std::move(name)};
}

Result<Receiver::Dir> Receiver::parent_of_named(std::string_view path, bool cacheable) {
  if (path.empty()) return fail("receive.bad-path", "this command cannot apply to the subvolume root");
  return parent_of(path, cacheable);
}

Result<UniqueFd> Receiver::open_regular(int root, std::string_view path, int flags) {
  auto p = BALLAST_TRY(open_beneath(root, std::string(path), O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS));
  struct stat st;
  if (::fstat(p.get(), &st) != 0) return fail_errno("receive.io", errno, "cannot stat " + std::string(path));
  // Opening a device node or fifo has side effects (or blocks); data commands only touch files.
  if (!S_ISREG(st.st_mode)) return fail("receive.not-a-file", std::string(path) + " is not a regular file");
  int fd = ::open(fd_entry_path(p.get(), "").c_str(), flags | O_CLOEXEC);
  if (fd < 0) return fail_errno("receive.io", errno, "cannot open " + std::string(path));
  return UniqueFd(fd);
}

Result<int> Receiver::write_fd(std::string_view path) {
  if (int fd = open_write_fd(path); fd >= 0) return fd;
  if (path.empty()) return fail("receive.not-a-file", "the subvolume root is not a file");
  close_write();
  // Through the cached parent directory: one component to look up instead of the whole path.
  // Checking the type first matters: opening a device node or fifo has side effects or blocks,
  // and only this receiver writes into the partial subvolume, so the type cannot change between.
  auto d = BALLAST_TRY(parent_of(path));
  struct stat st;
  if (::fstatat(d.fd, d.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("receive.io", errno, "cannot stat " + std::string(path));
  if (!S_ISREG(st.st_mode)) return fail("receive.not-a-file", std::string(path) + " is not a regular file");
  int fd = ::openat(d.fd, d.name.c_str(), O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail_errno("receive.io", errno, "cannot open " + std::string(path));
  write_fd_.reset(fd);
  write_path_ = std::string(path);
  note_mtime_changed(path);
  return write_fd_.get();
}

void Receiver::note_mtime_changed(std::string_view path) {
  if (track_changed_) mtime_changed_.emplace(path);
}

void Receiver::rebase_changed(std::string_view from, std::string_view to) {
  if (!track_changed_) return;
  // Every path under `from` starts with it, and those sort together.
  std::vector<std::string> moved;
  auto it = mtime_changed_.lower_bound(from);
  while (it != mtime_changed_.end() && it->compare(0, from.size(), from) == 0) {
    if (it->size() == from.size() || (*it)[from.size()] == '/') {
      moved.push_back(std::string(to) + it->substr(from.size()));
      it = mtime_changed_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& p : moved) mtime_changed_.insert(std::move(p));
}

void Receiver::forget_paths_under(std::string_view from, std::string_view to) {
  if (write_fd_ && !rebase_path(write_path_, from, to)) close_write();
  std::erase_if(dirs_, [&](CachedDir& d) { return !rebase_path(d.path, from, to); });
}

Status Receiver::do_write(int fd, uint64_t off, std::string_view data) {
  while (!data.empty()) {
    if (off > static_cast<uint64_t>(LLONG_MAX)) return fail("receive.bad-attribute", "file offset out of range");
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("receive.io", errno, "cannot write " + write_path_);
    }
    data.remove_prefix(static_cast<size_t>(n));
    off += static_cast<uint64_t>(n);
  }
  return ok();
}

Status Receiver::begin_subvol(const Command& c, bool snapshot) {
  if (have_subvol_) return fail("receive.bad-stream", "a second subvol/snapshot command in one stream");
  auto name = BALLAST_TRY(c.path(Attr::path));
  if (name.empty() || name.find('/') != std::string_view::npos)
    return fail("receive.bad-path", "the subvolume name must be one path component: '" + std::string(name) + "'");
  uuid_ = BALLAST_TRY(c.uuid(Attr::uuid));
  result_.ctransid = BALLAST_TRY(c.u64(Attr::ctransid));
  result_.name = opts_.name.empty() ? std::string(name) : opts_.name;
  result_.received_uuid = stream::format_uuid(uuid_);
  result_.path = path_join(opts_.dest_dir, result_.name);
  struct stat st;
  if (::fstatat(dest_fd_.get(), result_.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    return fail("receive.exists", result_.path + " already exists");

  std::random_device rd;
  char suffix[20];
  std::snprintf(suffix, sizeof(suffix), "%08x%08x", rd(), rd());
  std::string tmp = std::string(kReceivePrefix) + suffix;

  if (!snapshot) {
    auto e = btrfs_util_create_subvolume_fd(partial_fd_.get(), tmp.c_str(), 0, nullptr, nullptr);
    BALLAST_CHECK(util_status(e, "receive.create", "cannot create subvolume " + tmp));
  } else {
    parent_uuid_ = BALLAST_TRY(c.uuid(Attr::clone_uuid));
    uint64_t parent_ctransid = BALLAST_TRY(c.u64(Attr::clone_ctransid));
    auto subvols = BALLAST_TRY(list_subvolumes(opts_.dest_dir));
    const SubvolInfo* found = nullptr;
    const SubvolInfo* stale = nullptr;
    char real_dest[PATH_MAX];
    std::string dest_real = ::realpath(opts_.dest_dir.c_str(), real_dest) ? real_dest : opts_.dest_dir;
    auto in_dest = [&](const SubvolInfo& s) { return s.path.substr(0, s.path.rfind('/')) == dest_real; };
    // received_uuid first: that is how a chain of received updates refers to its parent. Among
    // equal copies, the one beside the new subvolume is the natural parent.
    for (int pass = 0; pass < 2 && !found; ++pass) {
      for (const auto& s : subvols) {
        bool by_received = uuid_eq(s.info.received_uuid, parent_uuid_);
        if (pass == 0 ? !by_received : (by_received || !uuid_eq(s.info.uuid, parent_uuid_))) continue;
        auto m = match_subvol(s.info, parent_uuid_, parent_ctransid);
        if (m == Match::yes && (!found || (!in_dest(*found) && in_dest(s)))) found = &s;
        if (m == Match::wrong_transid && !stale) stale = &s;
      }
    }
    if (!found) {
      if (stale)
        return fail("receive.parent-changed",
                    "parent " + stale->path + " has uuid " + stream::format_uuid(parent_uuid_) +
                        " but its transid is " +
                        std::to_string(uuid_eq(stale->info.received_uuid, parent_uuid_) ? stale->info.stransid
                                                                                          : stale->info.ctransid) +
                        ", the stream needs " + std::to_string(parent_ctransid));
      return fail("receive.no-parent", "no parent subvolume with uuid " + stream::format_uuid(parent_uuid_) +
                                           " and transid " + std::to_string(parent_ctransid) + " on this filesystem");
    }
    if (!(found->info.flags & kRootSubvolReadOnly))
      return fail("receive.parent-writable", "parent " + found->path + " is not read-only, so it may have changed");
    result_.parent_path = found->path;
    // Zero for a parent this receiver did not make: nothing is then known of the sender's clock.
    parent_newest_ctime_ = {static_cast<uint64_t>(found->info.stime.tv_sec),
                            static_cast<uint32_t>(found->info.stime.tv_nsec)};
    track_changed_ = !opts_.exact_atime && parent_newest_ctime_.sec != 0;
    newest_ctime_ = parent_newest_ctime_;
    parent_fd_ = BALLAST_TRY(open_dir(found->path));
    auto e = btrfs_util_create_snapshot_fd2(parent_fd_.get(), partial_fd_.get(), tmp.c_str(), 0, nullptr, nullptr);
    BALLAST_CHECK(util_status(e, "receive.create", "cannot snapshot " + found->path));
  }
  tmp_name_ = tmp;
  int fd = ::openat(partial_fd_.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail_errno("receive.create", errno, "cannot open the new subvolume");
  subvol_fd_.reset(fd);
  have_subvol_ = true;
  return ok();
}

Result<int> Receiver::clone_source_root(const Uuid& uuid, uint64_t ctransid) {
  if (uuid == uuid_) return subvol_fd_.get();
  if (parent_fd_ && uuid == parent_uuid_) return parent_fd_.get();
  if (!extra_loaded_) {
    extra_loaded_ = true;
    for (const auto& p : opts_.clone_sources) {
      SubvolInfo s{p, {}};
      BALLAST_CHECK(util_status(btrfs_util_subvolume_info(p.c_str(), 0, &s.info), "receive.clone-source",
                                "cannot read subvolume info of clone source " + p));
      auto fd = BALLAST_TRY(open_dir(p));
      extra_sources_.emplace_back(std::move(s), std::move(fd));
    }
  }
  for (auto& [s, fd] : extra_sources_)
    if (match_subvol(s.info, uuid, ctransid) == Match::yes) return fd.get();
  return fail("receive.clone-source", "clone source " + stream::format_uuid(uuid) + " (transid " +
                                          std::to_string(ctransid) +
                                          ") is neither this subvolume, its parent nor an allowed clone source");
}

Status Receiver::do_clone(const Command& c) {
  auto path = BALLAST_TRY(c.path(Attr::path));
  uint64_t off = BALLAST_TRY(c.u64(Attr::file_offset));
  uint64_t len = BALLAST_TRY(c.u64(Attr::clone_len));
  auto src_uuid = BALLAST_TRY(c.uuid(Attr::clone_uuid));
  uint64_t src_ctransid = BALLAST_TRY(c.u64(Attr::clone_ctransid));
  auto src_path = BALLAST_TRY(c.path(Attr::clone_path));
  uint64_t src_off = BALLAST_TRY(c.u64(Attr::clone_offset));
  if (off > LLONG_MAX || src_off > LLONG_MAX || len > LLONG_MAX)
    return fail("receive.bad-attribute", "clone range out of bounds");
  int root = BALLAST_TRY(clone_source_root(src_uuid, src_ctransid));
  int dst = BALLAST_TRY(write_fd(path));
  auto src = BALLAST_TRY(open_regular(root, src_path, O_RDONLY));
  file_clone_range r{};
  r.src_fd = src.get();
  r.src_offset = src_off;
  r.src_length = len;
  r.dest_offset = off;
  if (::ioctl(dst, FICLONERANGE, &r) == 0) return ok();
  if (errno != EINVAL && errno != EXDEV && errno != EOPNOTSUPP)
    return fail_errno("receive.io", errno, "cannot clone into " + std::string(path));
  // Unaligned or cross-filesystem ranges cannot be shared; copy them instead.
  scratch_.resize(1u << 20);
  while (len > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(len, scratch_.size()));
    ssize_t n = ::pread(src.get(), scratch_.data(), want, static_cast<off_t>(src_off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("receive.io", errno, "cannot read clone source " + std::string(src_path));
    if (n == 0) return fail("receive.bad-clone", "clone range runs past the end of " + std::string(src_path));
    BALLAST_CHECK(do_write(dst, off, std::string_view(scratch_.data(), static_cast<size_t>(n))));
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
    src_off += static_cast<uint64_t>(n);
  }
  return ok();
}

Status decompress_zstd(std::string_view in, char* out, size_t out_len) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) return fail("receive.decompress", "cannot allocate a zstd context");
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out, out_len, 0};
  while (ob.pos < ob.size) {
    size_t r = ZSTD_decompressStream(ctx.get(), &ob, &ib);
    if (ZSTD_isError(r)) return fail("receive.decompress", std::string("zstd: ") + ZSTD_getErrorName(r));
    if (r == 0 || ib.pos == ib.size) break;
  }
  if (ob.pos < ob.size) std::memset(out + ob.pos, 0, ob.size - ob.pos);
  return ok();
}

Status decompress_zlib(std::string_view in, char* out, size_t out_len) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return fail("receive.decompress", "cannot initialise zlib");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out);
  z.avail_out = static_cast<uInt>(out_len);
  int r = inflate(&z, Z_FINISH);
  size_t produced = out_len - z.avail_out;
  inflateEnd(&z);
  if (r != Z_STREAM_END && r != Z_OK && !(r == Z_BUF_ERROR && produced == out_len))
    return fail("receive.decompress", "zlib: corrupt compressed extent");
  if (produced < out_len) std::memset(out + produced, 0, out_len - produced);
  return ok();
}

Status Receiver::do_encoded_write(const Command& c) {
  auto path = BALLAST_TRY(c.path(Attr::path));
  uint64_t off = BALLAST_TRY(c.u64(Attr::file_offset));
  uint64_t file_len = BALLAST_TRY(c.u64(Attr::unencoded_file_len));
  uint64_t unenc_len = BALLAST_TRY(c.u64(Attr::unencoded_len));
  uint64_t unenc_off = BALLAST_TRY(c.u64(Attr::unencoded_offset));
  uint32_t compression = BALLAST_TRY(c.u32(Attr::compression));
  uint32_t encryption = c.has(Attr::encryption) ? BALLAST_TRY(c.u32(Attr::encryption)) : 0;
  auto data = BALLAST_TRY(c.bytes(Attr::data));
  if (encryption != 0) return fail("receive.unsupported", "encrypted extents are not supported");
  if (unenc_len > kMaxUnencoded || unenc_off > unenc_len || file_len > unenc_len - unenc_off || off > LLONG_MAX)
    return fail("receive.bad-attribute", "encoded_write lengths are inconsistent or too large");
  int fd = BALLAST_TRY(write_fd(path));

  iovec iov{const_cast<char*>(data.data()), data.size()};
  btrfs_ioctl_encoded_io_args args{};
  args.iov = &iov;
  args.iovcnt = 1;
  args.offset = static_cast<__s64>(off);
  args.len = file_len;
  args.unencoded_len = unenc_len;
  args.unencoded_offset = unenc_off;
  args.compression = compression;
  args.encryption = encryption;
  if (!opts_.decompress_encoded && ::ioctl(fd, BTRFS_IOC_ENCODED_WRITE, &args) >= 0) return ok();
  // The kernel refuses some encodings (e.g. other sector sizes); fall back to plain data.
  scratch_.resize(unenc_len);
  switch (compression) {
    case BTRFS_ENCODED_IO_COMPRESSION_ZSTD: BALLAST_CHECK(decompress_zstd(data, scratch_.data(), unenc_len)); break;
    case BTRFS_ENCODED_IO_COMPRESSION_ZLIB: BALLAST_CHECK(decompress_zlib(data, scratch_.data(), unenc_len)); break;
    default:
      return fail("receive.unsupported", "the kernel refused an encoded write with compression " +
                                             std::to_string(compression) + " and ballast cannot decompress it (LZO)");
  }
  return do_write(fd, off, std::string_view(scratch_.data() + unenc_off, file_len));
}

Status Receiver::do_fileattr(const Command& c) {
  auto path = BALLAST_TRY(c.path(Attr::path));
  uint64_t attr = BALLAST_TRY(c.u64(Attr::fileattr));
  long now = 0, later = 0;
  for (const auto& m : kFileattrMap)
    if (attr & m.btrfs) ((m.fs == FS_IMMUTABLE_FL || m.fs == FS_APPEND_FL) ? later : now) |= m.fs;
  UniqueFd fd;
  if (path.empty()) {
    fd.reset(::dup(subvol_fd_.get()));
  } else {
    auto p = BALLAST_TRY(open_beneath(subvol_fd_.get(), std::string(path), O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS));
    struct stat st;
    if (::fstat(p.get(), &st) != 0) return fail_errno("receive.io", errno, "cannot stat " + std::string(path));
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return ok();  // no flags on special files
    fd.reset(::open(fd_entry_path(p.get(), "").c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  }
  if (!fd) return fail_errno("receive.io", errno, "cannot open " + std::string(path));
  long cur = 0;
  if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &cur) != 0) return fail_errno("receive.io", errno, "cannot read flags");
  long mask = 0;
  for (const auto& m : kFileattrMap) mask |= m.fs;
  long next = (cur & ~mask) | now;
  if (next != cur && ::ioctl(fd.get(), FS_IOC_SETFLAGS, &next) != 0)
    return fail_errno("receive.io", errno, "cannot set file attributes of " + std::string(path));
  if (later) {
    // Immutable or append-only would refuse the stream's later commands on this inode.
    if (deferred_flags_.size() >= kMaxDeferredAttrs)
      return fail("receive.too-many", "too many immutable/append-only files in one stream");
    deferred_flags_.emplace_back(std::move(fd), next | later);
  }
  return ok();
}

Status Receiver::do_xattr(const Command& c, bool set) {
  auto path = BALLAST_TRY(c.path(Attr::path));
  auto name = BALLAST_TRY(c.string(Attr::xattr_name));
  std::string n(name);
  if (path.empty()) {
    if (set) {
      auto data = BALLAST_TRY(c.bytes(Attr::xattr_data));
      if (::fsetxattr(subvol_fd_.get(), n.c_str(), data.data(), data.size(), 0) != 0)
        return fail_errno("receive.io", errno, "cannot set xattr " + n + " on the subvolume root");
    } else if (::fremovexattr(subvol_fd_.get(), n.c_str()) != 0) {
      return fail_errno("receive.io", errno, "cannot remove xattr " + n + " from the subvolume root");
    }
    return ok();
  }
  auto dir = BALLAST_TRY(parent_of(path));
  auto p = fd_entry_path(dir.fd, dir.name);
  if (set) {
    auto data = BALLAST_TRY(c.bytes(Attr::xattr_data));
    if (::lsetxattr(p.c_str(), n.c_str(), data.data(), data.size(), 0) != 0)
      return fail_errno("receive.io", errno, "cannot set xattr " + n + " on " + std::string(path));
  } else if (::lremovexattr(p.c_str(), n.c_str()) != 0) {
    return fail_errno("receive.io", errno, "cannot remove xattr " + n + " from " + std::string(path));
  }
  return ok();
}

bool Receiver::root_lacks(const std::string& name) {
  if (root_state_ == RootNames::unread) {
    root_state_ = RootNames::off;
    long flags = 0;
    if (::ioctl(subvol_fd_.get(), FS_IOC_GETFLAGS, &flags) != 0) return false;
    // An append-only or immutable root (from a parent) refuses the rename away from it that
    // a creation there precedes.
    if (flags & (FS_APPEND_FL | FS_IMMUTABLE_FL)) return false;
    // Reading it must not move the root's atime, which the stream sets or leaves as the parent's.
    auto names = list_dir_keeping_atime(subvol_fd_.get());
    if (!names || names->size() > kMaxRootNames) return false;
    root_names_.insert(names->begin(), names->end());
    root_state_ = RootNames::tracked;
  }
  return root_state_ == RootNames::tracked && root_names_.count(name) == 0;
}

void Receiver::note_root_entry(std::string_view path, bool present) {
  if (root_state_ != RootNames::tracked || !is_top_level(path)) return;
  if (!present) {
    root_names_.erase(std::string(path));
    return;
  }
  root_names_.emplace(path);
  if (root_names_.size() > kMaxRootNames) {
    root_state_ = RootNames::off;
    root_names_.clear();
  }
}

Status Receiver::defer_create(const Command& c, uint64_t offset) {
  PendingCreate p;
  p.cmd = c.cmd;
  p.offset = offset;
  p.path = std::string(BALLAST_TRY(c.path(Attr::path)));
  if (c.cmd == Cmd::symlink) p.target = std::string(BALLAST_TRY(c.string(Attr::path_link)));
  if (c.cmd == Cmd::mkfifo || c.cmd == Cmd::mksock) p.type = c.cmd == Cmd::mkfifo ? S_IFIFO : S_IFSOCK;
  if (c.cmd == Cmd::mknod) {
    uint64_t mode = BALLAST_TRY(c.u64(Attr::mode));
    uint64_t rdev = BALLAST_TRY(c.u64(Attr::rdev));
    p.type = static_cast<mode_t>(mode & S_IFMT);
    if (p.type != S_IFCHR && p.type != S_IFBLK && p.type != S_IFIFO && p.type != S_IFSOCK)
      return fail("receive.bad-attribute", "mknod of a type that is not a device, fifo or socket");
    p.dev = static_cast<dev_t>(rdev);
  }
  if (p.path.empty()) return fail("receive.bad-path", "this command cannot apply to the subvolume root");
  pending_ = std::move(p);
  return ok();
}

Status Receiver::create_at(const PendingCreate& p, int dirfd, const std::string& name, std::string_view path) {
  switch (p.cmd) {
    case Cmd::mkfile: {
      int fd = ::openat(dirfd, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) return fail_errno("receive.io", errno, "cannot create " + std::string(path));
      // Its data, owner, mode and times usually come next.
      close_write();
      write_fd_.reset(fd);
      write_path_ = std::string(path);
      break;
    }
    case Cmd::mkdir: BALLAST_CHECK(sys(::mkdirat(dirfd, name.c_str(), 0700), "cannot create directory", path)); break;
    case Cmd::symlink:
      BALLAST_CHECK(sys(::symlinkat(p.target.c_str(), dirfd, name.c_str()), "cannot create symlink", path));
      break;
    default: BALLAST_CHECK(sys(::mknodat(dirfd, name.c_str(), p.type | 0600, p.dev), "cannot create node", path));
  }
  note_root_entry(path, true);
  note_mtime_changed(path);
  note_entries_changed(path);
  return ok();
}

Status Receiver::flush_pending() {
  if (!pending_) return ok();
  PendingCreate p = std::move(*pending_);
  pending_.reset();
  auto made = [&]() -> Status {
    auto d = BALLAST_TRY(parent_of_named(p.path));
    return create_at(p, d.fd, d.name, p.path);
  }();
  return with_context(std::move(made), [&] { return command_context(p.cmd, p.offset); });
}

// True when `c` renames the pending creation and it was made at the new name instead, which
// is only done where creating it first and renaming it would have given the same: its own name
// free in the root and the new name free (EEXIST: the rename would replace an entry).
// Otherwise nothing changed and the caller creates it and applies `c` as usual.
bool Receiver::create_renamed(const Command& c) {
  if (c.cmd != Cmd::rename) return false;
  auto from = c.path(Attr::path);
  auto to = c.path(Attr::path_to);
  if (!from || !to || *from != pending_->path || !is_top_level(*from) || !root_lacks(pending_->path)) return false;
  // Before creating: a new file stays open as the write file under its final name. Only
  // drops what is cached under the target; nothing is cached under a name that does not exist.
  forget_paths_under(*from, *to);
  auto d = parent_of_named(*to);
  if (!d) return false;
  if (!create_at(*pending_, d->fd, d->name, *to)) return false;
  pending_.reset();
  return true;
}

Status Receiver::apply(const Command& c, uint64_t offset) {
  // Every command settles a held-back creation first, so none is ever lost or reordered.
  if (pending_) {
    if (create_renamed(c)) return ok();
    BALLAST_CHECK(flush_pending());
  }
  return with_context(apply_command(c, offset), [&] { return command_context(c.cmd, offset); });
}

Status Receiver::apply_command(const Command& c, uint64_t offset) {
  if (c.cmd == Cmd::subvol) return begin_subvol(c, false);
  if (c.cmd == Cmd::snapshot) return begin_subvol(c, true);
  if (!have_subvol_) return fail("receive.bad-stream", std::string(cmd_name(c.cmd)) + " before subvol/snapshot");
  switch (c.cmd) {
    case Cmd::subvol:
    case Cmd::snapshot:
    case Cmd::unspec:
    case Cmd::end:
      return ok();
    case Cmd::mkfile:
    case Cmd::mkdir:
    case Cmd::mknod:
    case Cmd::mkfifo:
    case Cmd::mksock:
    case Cmd::symlink: return defer_create(c, offset);
    case Cmd::rename: {
      auto from = BALLAST_TRY(c.path(Attr::path));
      auto to = BALLAST_TRY(c.path(Attr::path_to));
      auto df = BALLAST_TRY(parent_of_named(from, false));
      auto dt = BALLAST_TRY(parent_of_named(to));
      BALLAST_CHECK(sys(::renameat(df.fd, df.name.c_str(), dt.fd, dt.name.c_str()), "cannot rename", from));
      forget_paths_under(from, to);
      rebase_changed(from, to);
      note_entries_changed(from);
      note_entries_changed(to);
      note_root_entry(from, false);
      note_root_entry(to, true);
      return ok();
    }
    case Cmd::link: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      auto target = BALLAST_TRY(c.path(Attr::path_link));
      auto dt = BALLAST_TRY(parent_of_named(target, false));
      auto dn = BALLAST_TRY(parent_of_named(path));
      BALLAST_CHECK(sys(::linkat(dt.fd, dt.name.c_str(), dn.fd, dn.name.c_str(), 0), "cannot link", path));
      note_entries_changed(path);
      note_root_entry(path, true);
      return ok();
    }
    case Cmd::unlink:
    case Cmd::rmdir: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      auto d = BALLAST_TRY(parent_of_named(path));
      BALLAST_CHECK(sys(::unlinkat(d.fd, d.name.c_str(), c.cmd == Cmd::rmdir ? AT_REMOVEDIR : 0), "cannot remove", path));
      if (write_path_ == path) close_write();
      std::erase_if(dirs_, [&](const CachedDir& d) { return d.path == path; });
      note_entries_changed(path);
      note_root_entry(path, false);
      return ok();
    }
    case Cmd::set_xattr: return do_xattr(c, true);
    case Cmd::remove_xattr: return do_xattr(c, false);
    case Cmd::write: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      uint64_t off = BALLAST_TRY(c.u64(Attr::file_offset));
      auto data = BALLAST_TRY(c.bytes(Attr::data));
      int fd = BALLAST_TRY(write_fd(path));
      return do_write(fd, off, data);
    }
    case Cmd::clone: return do_clone(c);
    case Cmd::truncate: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      uint64_t size = BALLAST_TRY(c.u64(Attr::size));
      if (size > LLONG_MAX) return fail("receive.bad-attribute", "truncate size out of range");
      int fd = BALLAST_TRY(write_fd(path));
      return sys(::ftruncate(fd, static_cast<off_t>(size)), "cannot truncate", path);
    }
    case Cmd::chmod: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      mode_t mode = static_cast<mode_t>(BALLAST_TRY(c.u64(Attr::mode)) & 07777);
      if (path.empty()) return sys(::fchmod(subvol_fd_.get(), mode), "cannot chmod", "the subvolume root");
      if (int fd = open_write_fd(path); fd >= 0) return sys(::fchmod(fd, mode), "cannot chmod", path);
      auto d = BALLAST_TRY(parent_of(path));
      struct stat st;
      BALLAST_CHECK(sys(::fstatat(d.fd, d.name.c_str(), &st, AT_SYMLINK_NOFOLLOW), "cannot stat", path));
      if (S_ISLNK(st.st_mode)) return ok();  // symlink modes are fixed; chmod would follow it
      return sys(::fchmodat(d.fd, d.name.c_str(), mode, 0), "cannot chmod", path);
    }
    case Cmd::chown: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      uint64_t uid = BALLAST_TRY(c.u64(Attr::uid));
      uint64_t gid = BALLAST_TRY(c.u64(Attr::gid));
      if (uid >= UINT32_MAX || gid >= UINT32_MAX) return fail("receive.bad-attribute", "uid/gid out of range");
      if (path.empty())
        return sys(::fchown(subvol_fd_.get(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)), "cannot chown",
                   "the subvolume root");
      if (int fd = open_write_fd(path); fd >= 0)
        return sys(::fchown(fd, static_cast<uid_t>(uid), static_cast<gid_t>(gid)), "cannot chown", path);
      auto d = BALLAST_TRY(parent_of(path));
      return sys(::fchownat(d.fd, d.name.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid), AT_SYMLINK_NOFOLLOW),
                 "cannot chown", path);
    }
    case Cmd::utimes: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      auto at = BALLAST_TRY(c.timespec(Attr::atime));
      auto mt = BALLAST_TRY(c.timespec(Attr::mtime));
      std::optional<stream::Timespec> ct;
      if (c.has(Attr::ctime)) ct = BALLAST_TRY(c.timespec(Attr::ctime));
      // The kernel's send always gives the inode's ctime; a zero one says nothing about when it
      // changed, so it neither skips the lookup below nor lowers the recorded stime.
      if (ct && ct->sec == 0 && ct->nsec == 0) ct.reset();
      if (ct && earlier(newest_ctime_, *ct)) newest_ctime_ = *ct;
      struct timespec ts[2] = {{static_cast<time_t>(at.sec), static_cast<long>(at.nsec)},
                               {static_cast<time_t>(mt.sec), static_cast<long>(mt.nsec)}};
      if (int fd = open_write_fd(path); fd >= 0) return sys(::futimens(fd, ts), "cannot set times of", path);
      // Changed before the parent was sent, and not since by this receive: its mtime is the
      // parent's, which the stream repeats, so only the access time differs (below), known
      // without looking the inode up. A ctime that was set within the parent's newest tick is
      // not "before"; and a changed inode with an older ctime (a sender whose clock went back)
      // was written or renamed into by this stream, which keeps it out of here.
      if (track_changed_ && ct && earlier(*ct, parent_newest_ctime_) && !mtime_changed_.count(path)) {
        ++result_.atime_only_skipped;
        ++result_.atime_only_by_ctime;
        return ok();
      }
      Dir d;
      if (!path.empty()) d = BALLAST_TRY(parent_of(path));
      // Only an inode of the parent can already carry the stream's mtime (one this receive made
      // or changed has a new one), and then all this command would record is when the build
      // machine last read it: an access time a read-only image never updates and nothing reads.
      // Leaving it unwritten spares the inode's metadata; most of an ordinary delta's utimes
      // are such directories.
      if (!opts_.exact_atime && !result_.parent_path.empty()) {
        struct stat st;
        int rc = path.empty() ? ::fstat(subvol_fd_.get(), &st)
                              : ::fstatat(d.fd, d.name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
        if (rc == 0 && st.st_mtim.tv_sec == ts[1].tv_sec && st.st_mtim.tv_nsec == ts[1].tv_nsec) {
          ++result_.atime_only_skipped;
          return ok();
        }
      }
      if (path.empty()) return sys(::futimens(subvol_fd_.get(), ts), "cannot set times of", "the subvolume root");
      return sys(::utimensat(d.fd, d.name.c_str(), ts, AT_SYMLINK_NOFOLLOW), "cannot set times of", path);
    }
    case Cmd::update_extent: {
      // Only sent by `btrfs send --no-data`; there is nothing to apply, but it must be well formed.
      BALLAST_CHECK(c.path(Attr::path));
      BALLAST_CHECK(c.u64(Attr::file_offset));
      BALLAST_CHECK(c.u64(Attr::size));
      return ok();
    }
    case Cmd::fallocate: {
      auto path = BALLAST_TRY(c.path(Attr::path));
      uint32_t mode = BALLAST_TRY(c.u32(Attr::fallocate_mode));
      uint64_t off = BALLAST_TRY(c.u64(Attr::file_offset));
      uint64_t len = BALLAST_TRY(c.u64(Attr::size));
      if (mode & ~(stream::kFallocateKeepSize | stream::kFallocatePunchHole))
        return fail("receive.bad-attribute", "unknown fallocate mode " + std::to_string(mode));
      if (off > LLONG_MAX || len > LLONG_MAX) return fail("receive.bad-attribute", "fallocate range out of range");
      int m = 0;
      if (mode & stream::kFallocateKeepSize) m |= FALLOC_FL_KEEP_SIZE;
      if (mode & stream::kFallocatePunchHole) m |= FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      int fd = BALLAST_TRY(write_fd(path));
      return sys(::fallocate(fd, m, static_cast<off_t>(off), static_cast<off_t>(len)), "cannot fallocate", path);
    }
    case Cmd::fileattr: return do_fileattr(c);
    case Cmd::encoded_write: return do_encoded_write(c);
  }
  return fail("receive.unknown-command", "unknown command");
}

Status Receiver::finish() {
  close_write();
  dirs_.clear();
  for (auto& [fd, flags] : deferred_flags_)
    if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0)
      return fail_errno("receive.io", errno, "cannot set immutable/append-only flags");
  deferred_flags_.clear();
  btrfs_ioctl_received_subvol_args rs{};
  std::memcpy(rs.uuid, uuid_.data(), 16);
  rs.stransid = result_.ctransid;
  // The stime a send records is the sender's; the newest ctime of the tree is a lower bound of it
  // that the next incremental receive compares its ctimes with.
  rs.stime.sec = newest_ctime_.sec;
  rs.stime.nsec = newest_ctime_.nsec;
  if (::ioctl(subvol_fd_.get(), BTRFS_IOC_SET_RECEIVED_SUBVOL, &rs) != 0)
    return fail_errno("receive.set-received", errno, "cannot set the received uuid");
  // The VFS refuses to move a read-only directory to another parent (it would rewrite its
  // ".."), so across directories the subvolume is moved first and made read-only right after;
  // within one directory it only appears once read-only.
  struct stat sd, sp;
  if (::fstat(dest_fd_.get(), &sd) != 0 || ::fstat(partial_fd_.get(), &sp) != 0)
    return fail_errno("receive.io", errno, "cannot stat the destination");
  bool same_dir = sd.st_dev == sp.st_dev && sd.st_ino == sp.st_ino;
  auto make_ro = [&] {
    return util_status(btrfs_util_set_subvolume_read_only_fd(subvol_fd_.get(), true), "receive.read-only",
                       "cannot make the subvolume read-only");
  };
  if (same_dir) BALLAST_CHECK(make_ro());
  if (::renameat2(partial_fd_.get(), tmp_name_.c_str(), dest_fd_.get(), result_.name.c_str(), RENAME_NOREPLACE) != 0)
    return fail_errno(errno == EEXIST ? "receive.exists" : "receive.rename", errno,
                      "cannot move the received subvolume to " + result_.path);
  if (!same_dir) {
    // From here on, a failure must remove the subvolume under its final name.
    partial_fd_.reset(::dup(dest_fd_.get()));
    tmp_name_ = result_.name;
    BALLAST_CHECK(make_ro());
  }
  subvol_fd_.reset();
  committed_ = true;
  return ok();
}

Result<ReceivedSubvolume> Receiver::run(ByteSource& in) {
  dest_fd_ = BALLAST_TRY(open_dir(opts_.dest_dir));
  partial_fd_ = BALLAST_TRY(open_dir(opts_.partial_dir.empty() ? opts_.dest_dir : opts_.partial_dir));
  stream::StreamReader reader(in, opts_.max_command);
  result_.version = BALLAST_TRY(reader.read_header());
  Command c;
  uint64_t last_progress = 0;
  for (;;) {
    bool more = BALLAST_TRY(reader.next(c));
    if (!more) return fail("receive.truncated", "the stream ends without an end command");
    ++result_.commands;
    if (opts_.cancelled && opts_.cancelled()) return fail("receive.cancelled", "the receive was cancelled");
    if (c.cmd == Cmd::end) {
      BALLAST_CHECK(flush_pending());
      break;
    }
    BALLAST_CHECK(apply(c, reader.bytes_consumed() - c.length - stream::kCommandHeaderLen));
    if (opts_.progress && reader.bytes_consumed() - last_progress >= (4u << 20)) {
      last_progress = reader.bytes_consumed();
      opts_.progress(last_progress);
    }
  }
  if (!have_subvol_) return fail("receive.bad-stream", "the stream has no subvol or snapshot command");
  if (!BALLAST_TRY(reader.at_eof()))
    return fail("receive.trailing-data", "bytes follow the end command (one stream per receive)");
  result_.bytes = reader.bytes_consumed();
  BALLAST_CHECK(finish());
  if (opts_.progress) opts_.progress(result_.bytes);
  return result_;
}

}  // namespace

Result<std::vector<std::string>> remove_receive_debris(const std::string& dir) {
  std::vector<std::string> removed;
  for (const auto& n : BALLAST_TRY(list_dir(dir))) {
    if (n.rfind(kReceivePrefix, 0) != 0 || !BALLAST_TRY(is_subvolume(path_join(dir, n)))) continue;
    BALLAST_CHECK(delete_subvolume(path_join(dir, n)));
    removed.push_back(n);
  }
  return removed;
}

Result<ReceivedSubvolume> receive(ByteSource& in, const ReceiveOptions& opts) {
  Receiver r(opts);
  return with_context(r.run(in), "receiving into " + opts.dest_dir);
}

Status dump(ByteSource& in, std::ostream& out) {
  stream::StreamReader reader(in);
  for (;;) {
    BALLAST_CHECK(reader.read_header());
    stream::Command c;
    bool ended = false;
    for (;;) {
      bool more = BALLAST_TRY(reader.next(c));
      if (!more) break;
      out << stream::describe(c) << '\n';
      if (c.cmd == Cmd::end) {
        ended = true;
        break;
      }
    }
    if (!ended) return fail("receive.truncated", "the stream ends without an end command");
    if (BALLAST_TRY(reader.at_eof())) break;
  }
  out.flush();
  return ok();
}

}  // namespace ballast::snapshot
