#include "snapshot/subvolume.hpp"

#include <btrfsutil.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "common/log.hpp"

namespace ballast::snapshot {

namespace {

tl::unexpected<Error> util_error(const std::string& code, enum btrfs_util_error err, const std::string& what) {
  return fail_errno(code, errno, what + ": " + btrfs_util_strerror(err));
}

}  // namespace

Status create_subvolume(const std::string& path) {
  auto err = btrfs_util_create_subvolume(path.c_str(), 0, nullptr, nullptr);
  if (err != BTRFS_UTIL_OK) return util_error("subvolume.create", err, "cannot create subvolume " + path);
  return ok();
}

Status snapshot_subvolume(const std::string& source, const std::string& dest, bool read_only) {
  int flags = read_only ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0;
  auto err = btrfs_util_create_snapshot(source.c_str(), dest.c_str(), flags, nullptr, nullptr);
  if (err != BTRFS_UTIL_OK)
    return util_error("subvolume.snapshot", err, "cannot snapshot " + source + " to " + dest);
  return ok();
}

Status set_read_only(const std::string& path, bool read_only) {
  auto err = btrfs_util_set_subvolume_read_only(path.c_str(), read_only);
  if (err != BTRFS_UTIL_OK) return util_error("subvolume.read-only", err, "cannot change read-only flag of " + path);
  return ok();
}

Result<bool> is_read_only(const std::string& path) {
  bool ro = false;
  auto err = btrfs_util_get_subvolume_read_only(path.c_str(), &ro);
  if (err != BTRFS_UTIL_OK) return util_error("subvolume.read-only", err, "cannot read read-only flag of " + path);
  return ro;
}

Result<bool> is_subvolume(const std::string& path) {
  auto err = btrfs_util_is_subvolume(path.c_str());
  if (err == BTRFS_UTIL_OK) return true;
  if (err == BTRFS_UTIL_ERROR_NOT_SUBVOLUME || err == BTRFS_UTIL_ERROR_NOT_BTRFS) return false;
  return util_error("subvolume.query", err, "cannot tell whether " + path + " is a subvolume");
}

Status delete_subvolume(const std::string& path) {
  // Nested subvolumes (a deployment's /etc) go first, and unlinking one needs its parent
  // writable: clear every read-only flag top-down, then delete bottom-up.
  struct btrfs_util_subvolume_iterator* it = nullptr;
  auto err = btrfs_util_create_subvolume_iterator(path.c_str(), 0, BTRFS_UTIL_SUBVOLUME_ITERATOR_POST_ORDER, &it);
  if (err != BTRFS_UTIL_OK) return util_error("subvolume.delete", err, "cannot list subvolumes below " + path);
  std::vector<std::string> nested;
  for (;;) {
    char* child = nullptr;
    err = btrfs_util_subvolume_iterator_next(it, &child, nullptr);
    if (err == BTRFS_UTIL_ERROR_STOP_ITERATION) break;
    if (err != BTRFS_UTIL_OK) {
      btrfs_util_destroy_subvolume_iterator(it);
      return util_error("subvolume.delete", err, "cannot list subvolumes below " + path);
    }
    nested.push_back(path + "/" + child);
    free(child);
  }
  btrfs_util_destroy_subvolume_iterator(it);
  nested.push_back(path);
  for (auto it = nested.rbegin(); it != nested.rend(); ++it) {
    err = btrfs_util_set_subvolume_read_only(it->c_str(), false);
    if (err != BTRFS_UTIL_OK) return util_error("subvolume.delete", err, "cannot make " + *it + " writable to delete it");
  }
  for (const auto& p : nested) {
    err = btrfs_util_delete_subvolume(p.c_str(), 0);
    if (err != BTRFS_UTIL_OK) return util_error("subvolume.delete", err, "cannot delete subvolume " + p);
  }
  return ok();
}

Result<size_t> wait_for_cleaned_subvolumes(const std::string& path, std::chrono::milliseconds limit) {
  uint64_t* ids = nullptr;
  size_t n = 0;
  auto err = btrfs_util_deleted_subvolumes(path.c_str(), &ids, &n);
  if (err != BTRFS_UTIL_OK) return util_error("subvolume.sync", err, "cannot list deleted subvolumes of " + path);
  std::vector<uint64_t> waiting(ids, ids + n);
  free(ids);
  if (waiting.empty()) return size_t{0};
  // A committed transaction wakes the cleaner; then poll, as `btrfs subvolume sync` does.
  uint64_t transid = 0;
  if (btrfs_util_start_sync(path.c_str(), &transid) == BTRFS_UTIL_OK) (void)btrfs_util_wait_sync(path.c_str(), transid);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<uint64_t> left = waiting;
  while (!left.empty()) {
    std::erase_if(left, [&](uint64_t id) {
      return btrfs_util_subvolume_info(path.c_str(), id, nullptr) == BTRFS_UTIL_ERROR_SUBVOLUME_NOT_FOUND;
    });
    if (left.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      log::warning(std::to_string(left.size()) + " deleted subvolume(s) of " + path + " are still being cleaned");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return waiting.size();
}

SubvolumeGuard::~SubvolumeGuard() {
  if (committed_ || path_.empty()) return;
  if (auto st = delete_subvolume(path_); !st)
    log::warning("could not remove partial subvolume " + path_ + ": " + st.error().describe());
}

}  // namespace ballast::snapshot
