// Compares two directory trees exactly as a received subvolume must match its source: entry
// types, content, holes, mode, owner, times, xattrs, link counts, symlink targets, device numbers.
#pragma once

#include <string>
#include <vector>

namespace ballast::testing {

struct TreeCompareOptions {
  bool compare_atime = true;
  bool compare_root_times = true;  // the roots' own mtime/atime
  bool compare_holes = true;       // data/hole layout (SEEK_DATA/SEEK_HOLE)
};

// Every difference found, one line each ("a/b: mode 100644 != 100600"); empty when equal.
std::vector<std::string> compare_trees(const std::string& a, const std::string& b,
                                       const TreeCompareOptions& opts = {});

// The data/hole layout of a file as [start, end) data ranges from SEEK_DATA/SEEK_HOLE.
std::vector<std::pair<long long, long long>> data_ranges(int fd);

}  // namespace ballast::testing
