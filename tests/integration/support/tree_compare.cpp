#include "tests/integration/support/tree_compare.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

namespace ballast::testing {

namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, std::string> xattrs(const std::string& path) {
  std::map<std::string, std::string> out;
  ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
  if (n <= 0) return out;
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(path.c_str(), names.data(), names.size());
  if (n <= 0) return out;
  names.resize(static_cast<size_t>(n));
  for (size_t p = 0; p < names.size();) {
    std::string name = names.c_str() + p;
    p += name.size() + 1;
    ssize_t len = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    std::string v(len > 0 ? static_cast<size_t>(len) : 0, '\0');
    if (len > 0) {
      len = ::lgetxattr(path.c_str(), name.c_str(), v.data(), v.size());
      v.resize(len > 0 ? static_cast<size_t>(len) : 0);
    }
    out[name] = v;
  }
  return out;
}

std::string octal(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof(b), "%o", v);
  return b;
}

std::string ts(const struct timespec& t) { return std::to_string(t.tv_sec) + "." + std::to_string(t.tv_nsec); }

bool same_content(const std::string& a, const std::string& b, bool holes, std::string& why) {
  int fa = ::open(a.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int fb = ::open(b.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  bool same = fa >= 0 && fb >= 0;
  if (!same) why = "cannot open";
  if (same && holes && data_ranges(fa) != data_ranges(fb)) {
    same = false;
    why = "holes differ";
  }
  std::vector<char> ba(1 << 20), bb(1 << 20);
  while (same) {
    ssize_t na = ::read(fa, ba.data(), ba.size());
    ssize_t nb = 0;
    while (nb < na) {
      ssize_t r = ::read(fb, bb.data() + nb, static_cast<size_t>(na - nb));
      if (r <= 0) break;
      nb += r;
    }
    if (na < 0 || na != nb || std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) {
      same = false;
      why = "content differs";
      break;
    }
    if (na == 0) {
      char c;
      if (::read(fb, &c, 1) != 0) {
        same = false;
        why = "content differs";
      }
      break;
    }
  }
  if (fa >= 0) ::close(fa);
  if (fb >= 0) ::close(fb);
  return same;
}

void compare_entry(const std::string& a, const std::string& b, const std::string& rel, bool is_root,
                   const TreeCompareOptions& opts, std::vector<std::string>& diffs) {
  struct stat sa, sb;
  if (::lstat(a.c_str(), &sa) != 0 || ::lstat(b.c_str(), &sb) != 0) {
    diffs.push_back(rel + ": missing on one side");
    return;
  }
  auto diff = [&](const std::string& what, const std::string& x, const std::string& y) {
    if (x != y) diffs.push_back(rel + ": " + what + " " + x + " != " + y);
  };
  diff("mode", octal(sa.st_mode), octal(sb.st_mode));
  if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return;
  diff("uid", std::to_string(sa.st_uid), std::to_string(sb.st_uid));
  diff("gid", std::to_string(sa.st_gid), std::to_string(sb.st_gid));
  if (!S_ISDIR(sa.st_mode)) diff("nlink", std::to_string(sa.st_nlink), std::to_string(sb.st_nlink));
  if (!S_ISDIR(sa.st_mode)) diff("size", std::to_string(sa.st_size), std::to_string(sb.st_size));
  if (!is_root || opts.compare_root_times) {
    diff("mtime", ts(sa.st_mtim), ts(sb.st_mtim));
    if (opts.compare_atime) diff("atime", ts(sa.st_atim), ts(sb.st_atim));
  }
  if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode))
    diff("rdev", std::to_string(sa.st_rdev), std::to_string(sb.st_rdev));
  auto xa = xattrs(a), xb = xattrs(b);
  if (xa != xb) {
    std::string la, lb;
    for (auto& [k, v] : xa) la += k + "(" + std::to_string(v.size()) + ") ";
    for (auto& [k, v] : xb) lb += k + "(" + std::to_string(v.size()) + ") ";
    diffs.push_back(rel + ": xattrs [" + la + "] != [" + lb + "]");
  }
  if (S_ISLNK(sa.st_mode)) {
    char ta[4096], tb[4096];
    ssize_t na = ::readlink(a.c_str(), ta, sizeof(ta)), nb = ::readlink(b.c_str(), tb, sizeof(tb));
    diff("symlink", std::string(ta, na > 0 ? static_cast<size_t>(na) : 0),
         std::string(tb, nb > 0 ? static_cast<size_t>(nb) : 0));
  } else if (S_ISREG(sa.st_mode)) {
    std::string why;
    if (!same_content(a, b, opts.compare_holes, why)) diffs.push_back(rel + ": " + why);
  } else if (S_ISDIR(sa.st_mode)) {
    auto ea = entries(a), eb = entries(b);
    std::set<std::string> all(ea.begin(), ea.end());
    all.insert(eb.begin(), eb.end());
    for (const auto& n : all) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      bool ina = std::binary_search(ea.begin(), ea.end(), n), inb = std::binary_search(eb.begin(), eb.end(), n);
      if (!ina || !inb) {
        diffs.push_back(r + ": only in " + (ina ? "first" : "second"));
        continue;
      }
      compare_entry(a + "/" + n, b + "/" + n, r, false, opts, diffs);
    }
  }
}

}  // namespace

std::vector<std::pair<long long, long long>> data_ranges(int fd) {
  std::vector<std::pair<long long, long long>> out;
  off_t pos = 0;
  for (;;) {
    off_t d = ::lseek(fd, pos, SEEK_DATA);
    if (d < 0) break;
    off_t h = ::lseek(fd, d, SEEK_HOLE);
    if (h < 0) break;
    out.emplace_back(d, h);
    pos = h;
  }
  ::lseek(fd, 0, SEEK_SET);
  return out;
}

std::vector<std::string> compare_trees(const std::string& a, const std::string& b, const TreeCompareOptions& opts) {
  std::vector<std::string> diffs;
  compare_entry(a, b, "", true, opts, diffs);
  return diffs;
}

}  // namespace ballast::testing
