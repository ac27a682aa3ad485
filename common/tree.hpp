// fd-relative tree operations below a directory fd: listing, stat, xattrs, removal and copies that
// keep mode, owner, xattrs and times and share extents (reflinks) where the filesystem allows.
// No path ever leaves the given directories and no symlink met on the way is followed.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"

namespace ballast::tree {

// Opens an entry of `dirfd` without following a final symlink and without leaving `dirfd`.
Result<UniqueFd> open_entry(int dirfd, const std::string& name, int flags);
// Sorted names in a directory, without "." and "..".
Result<std::vector<std::string>> entries_of(int dirfd);
// Extended attributes of a non-symlink entry (symlinks: none).
Result<std::map<std::string, std::string>> xattrs_of(int dirfd, const std::string& name);
Result<struct stat> lstat_at(int dirfd, const std::string& name);
Result<std::string> link_target(int dirfd, const std::string& name);
// Byte-for-byte comparison of two regular files of the given size.
Result<bool> same_content(int adir, int bdir, const std::string& name, off_t size);
// Removes an entry, recursively for directories; a missing entry is fine.
Status remove_entry(int dirfd, const std::string& name);
Status remove_children(int dirfd);
// Gives dst_dir/name the owner, mode, xattrs and times of `st` / src_dir/name.
Status apply_metadata(int src_dir, int dst_dir, const std::string& name, const struct stat& st);
// Copies src_dir/name (recursively) to dst_dir/name, which must not exist; reflinks where possible.
Status copy_entry(int src_dir, int dst_dir, const std::string& name);
// Copies every entry of `src` into `dst`, replacing what is there (an overlay).
Status overlay_tree(int src, int dst);

// Makes `dst` identical to `src` (content, type, mode, owner, xattrs, times) while touching only
// what differs: unchanged files keep their inode and extents, changed files are rewritten in
// place. An image built this way over a snapshot of its predecessor yields a minimal send delta.
// `ref` is a read-only twin of `dst` (the snapshot's source): every comparison reads `ref`, so
// not even an atime of an unchanged inode in `dst` moves.
Status sync_tree(int src, int ref, int dst);

}  // namespace ballast::tree
