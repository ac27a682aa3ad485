// Btrfs subvolume operations (libbtrfsutil) and the RAII guard that makes building a subvolume
// all-or-nothing: unless committed, the partial subvolume is deleted.
#pragma once

#include <chrono>
#include <string>

#include "common/result.hpp"

namespace ballast::snapshot {

Status create_subvolume(const std::string& path);
// Writable unless `read_only`; nested subvolumes are not included.
Status snapshot_subvolume(const std::string& source, const std::string& dest, bool read_only);
Status set_read_only(const std::string& path, bool read_only);
Result<bool> is_read_only(const std::string& path);
Result<bool> is_subvolume(const std::string& path);
// Deletes the subvolume and every subvolume nested below it (clearing read-only flags first).
// Its space comes back only once Btrfs' cleaner has dropped it: see wait_for_cleaned_subvolumes.
Status delete_subvolume(const std::string& path);

// `btrfs subvolume sync` semantics: waits until every subvolume deleted on the filesystem of
// `path` has been cleaned (its space is free again), for at most `limit`. Returns how many were
// still waiting to be cleaned when called.
Result<size_t> wait_for_cleaned_subvolumes(const std::string& path,
                                           std::chrono::milliseconds limit = std::chrono::minutes(5));

// Owns a subvolume under construction. The destructor deletes it unless commit() was called.
class SubvolumeGuard {
 public:
  explicit SubvolumeGuard(std::string path) : path_(std::move(path)) {}
  SubvolumeGuard(const SubvolumeGuard&) = delete;
  SubvolumeGuard& operator=(const SubvolumeGuard&) = delete;
  ~SubvolumeGuard();
  const std::string& path() const { return path_; }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  bool committed_ = false;
};

}  // namespace ballast::snapshot
