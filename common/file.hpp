// File helpers shared by every module: whole-file reads, crash-safe atomic writes, and
// confined path resolution below a directory fd.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"

namespace ballast {

// Opens `path` relative to `dirfd` with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS):
// absolute paths, ".." escapes and symlinks leading outside `dirfd` all fail with EXDEV.
// `extra_resolve` adds RESOLVE_* flags (e.g. RESOLVE_NO_SYMLINKS). O_CLOEXEC is always set.
Result<UniqueFd> open_beneath(int dirfd, const std::string& path, int flags, mode_t mode = 0,
                              uint64_t extra_resolve = 0);

Result<UniqueFd> open_dir(const std::string& path);

Result<std::string> read_file(const std::string& path, size_t max_bytes = 64 << 20);
Result<std::string> read_file_at(int dirfd, const std::string& path, size_t max_bytes = 64 << 20);
// read_file for a path that must be a regular file (after symlinks): a FIFO or a device is
// refused with "io.not-regular" instead of blocking the reader.
Result<std::string> read_regular_file(const std::string& path, size_t max_bytes = 64 << 20);

// Writes `data` so that a crash leaves either the old or the new content, never a mix:
// temp file in the same directory, fsync, rename over the target, fsync the directory.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
Status write_file_atomic_at(int dirfd, const std::string& name, std::string_view data,
                            mode_t mode = 0644);

Status fsync_dir(const std::string& path);

// mkdir -p; existing directories are fine.
Status make_dirs(const std::string& path, mode_t mode = 0755);

// Removes a file or an empty directory; a missing path is not an error.
Status remove_if_exists(const std::string& path);

// Removes a tree (not crossing into other subvolumes is the caller's concern); missing is fine.
Status remove_tree(const std::string& path);

bool path_exists(const std::string& path);

// Directory entries (names only, no "." or ".."), sorted.
Result<std::vector<std::string>> list_dir(const std::string& path);
// The names in the directory open as `dir_fd`, read without moving its access time (O_NOATIME:
// the caller must own it or have CAP_FOWNER).
Result<std::vector<std::string>> list_dir_keeping_atime(int dir_fd);
// The names in the directory open for reading as `dir` (its descriptor is taken), sorted.
Result<std::vector<std::string>> list_open_dir(UniqueFd dir);

// Joins two path parts with exactly one '/'.
std::string path_join(std::string_view a, std::string_view b);

// Creates a fresh private directory under $TMPDIR (or /tmp) named prefix-XXXXXX.
Result<std::string> make_temp_dir(const std::string& prefix);

}  // namespace ballast
