// A directory of one test's own, removed with all it holds when the test ends.
#pragma once

#include <string>

#include "common/file.hpp"

namespace ballast::testing {

struct TempDir {
  explicit TempDir(const std::string& prefix = "ballast-test") : path(make_temp_dir(prefix).value()) {}
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { (void)remove_tree(path); }
  std::string path;
};

}  // namespace ballast::testing
