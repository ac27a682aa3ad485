// Trees that exercise every kind of inode and change a send stream carries; shared by the
// receiver's fidelity tests.
#pragma once

#include <string>

namespace ballast::testing {

// Hardlinks, deep paths, long names, xattrs (incl. security.capability), sparse files, reflinks,
// fifos, sockets, device nodes, symlinks, odd modes/owners/times, empty, 4 KiB and 64 KiB files.
void build_tree_v1(const std::string& root);
// Writes, truncation (shrink and grow), hole punching, new and removed links, swaps, chmod,
// chown, utimes, xattr changes, deletions, new reflinks.
void change_tree_v2(const std::string& root);
// Directory cycles (a parent moved under its former child), rename over an existing file,
// replacing a file by a directory of the same name.
void change_tree_v3(const std::string& root);

// Writes <root>/usr/lib/os-release naming IMAGE_VERSION=<version>: what `ballast repo add` and a
// host's stage check before they take a tree as that release.
void write_image_version(const std::string& root, const std::string& version);

}  // namespace ballast::testing
