#include "snapshot/etc_merge.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "common/file.hpp"
#include "common/tree.hpp"

namespace ballast::snapshot {

namespace {

using namespace ballast::tree;

// True when the entry counts as locally changed for reasons other than a directory's children.
Result<bool> entry_differs(int image_dir, int live_dir, const std::string& name, const struct stat& a,
                           const struct stat& b) {
  if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) return true;
  if ((a.st_mode & 07777) != (b.st_mode & 07777) || a.st_uid != b.st_uid || a.st_gid != b.st_gid) return true;
  if (S_ISLNK(a.st_mode)) {
    if (BALLAST_TRY(link_target(image_dir, name)) != BALLAST_TRY(link_target(live_dir, name))) return true;
  } else if (S_ISREG(a.st_mode)) {
    if (a.st_size != b.st_size) return true;
    if (!BALLAST_TRY(same_content(image_dir, live_dir, name, a.st_size))) return true;
  } else if (S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) {
    if (a.st_rdev != b.st_rdev) return true;
  }
  return BALLAST_TRY(xattrs_of(image_dir, name)) != BALLAST_TRY(xattrs_of(live_dir, name));
}

Status replace_entry(int live_dir, int target_dir, const std::string& name) {
  BALLAST_CHECK(remove_entry(target_dir, name));
  return copy_entry(live_dir, target_dir, name);
}

struct Merger {
  EtcMergeReport report;

  Status merge_dir(int image_dir, int live_dir, int target_dir, const std::string& prefix) {
    auto image_names = BALLAST_TRY(entries_of(image_dir));
    auto live_names = BALLAST_TRY(entries_of(live_dir));
    std::set<std::string> all(image_names.begin(), image_names.end());
    all.insert(live_names.begin(), live_names.end());
    std::set<std::string> in_image(image_names.begin(), image_names.end());
    std::set<std::string> in_live(live_names.begin(), live_names.end());
    for (const auto& name : all) {
      std::string rel = prefix.empty() ? name : prefix + "/" + name;
      if (!in_live.count(name)) {  // deleted locally: stays deleted
        BALLAST_CHECK(with_context(remove_entry(target_dir, name), rel));
        report.deleted.push_back(rel);
        continue;
      }
      auto live_st = BALLAST_TRY(lstat_at(live_dir, name));
      if (!in_image.count(name)) {  // added locally: carried whole
        BALLAST_CHECK(with_context(replace_entry(live_dir, target_dir, name), rel));
        report.carried.push_back(rel);
        continue;
      }
      auto image_st = BALLAST_TRY(lstat_at(image_dir, name));
      bool differs = BALLAST_TRY(entry_differs(image_dir, live_dir, name, image_st, live_st));
      bool both_dirs = S_ISDIR(image_st.st_mode) && S_ISDIR(live_st.st_mode);
      if (both_dirs) {
        struct stat target_st;
        bool target_is_dir = ::fstatat(target_dir, name.c_str(), &target_st, AT_SYMLINK_NOFOLLOW) == 0 &&
                             S_ISDIR(target_st.st_mode);
        if (!target_is_dir) {
          // The new image no longer has this directory (or made it something else). Carry the
          // admin's version only when they changed anything inside it.
          if (differs || BALLAST_TRY(tree_differs(image_dir, live_dir, name))) {
            BALLAST_CHECK(with_context(replace_entry(live_dir, target_dir, name), rel));
            report.carried.push_back(rel);
          }
          continue;
        }
        if (differs) {
          BALLAST_CHECK(with_context(apply_metadata(live_dir, target_dir, name, live_st), rel));
          report.metadata.push_back(rel);
        }
        auto i = BALLAST_TRY(open_entry(image_dir, name, O_RDONLY | O_DIRECTORY));
        auto l = BALLAST_TRY(open_entry(live_dir, name, O_RDONLY | O_DIRECTORY));
        auto t = BALLAST_TRY(open_entry(target_dir, name, O_RDONLY | O_DIRECTORY));
        BALLAST_CHECK(merge_dir(i.get(), l.get(), t.get(), rel));
        continue;
      }
      if (differs) {
        BALLAST_CHECK(with_context(replace_entry(live_dir, target_dir, name), rel));
        report.carried.push_back(rel);
      }
    }
    return ok();
  }

  // Whether anything below two same-named directories differs.
  Result<bool> tree_differs(int image_dir, int live_dir, const std::string& name) {
    auto i = BALLAST_TRY(open_entry(image_dir, name, O_RDONLY | O_DIRECTORY));
    auto l = BALLAST_TRY(open_entry(live_dir, name, O_RDONLY | O_DIRECTORY));
    auto in = BALLAST_TRY(entries_of(i.get()));
    auto ln = BALLAST_TRY(entries_of(l.get()));
    if (in != ln) return true;
    for (const auto& child : in) {
      auto a = BALLAST_TRY(lstat_at(i.get(), child));
      auto b = BALLAST_TRY(lstat_at(l.get(), child));
      if (BALLAST_TRY(entry_differs(i.get(), l.get(), child, a, b))) return true;
      if (S_ISDIR(a.st_mode) && BALLAST_TRY(tree_differs(i.get(), l.get(), child))) return true;
    }
    return false;
  }
};

}  // namespace

Result<EtcMergeReport> merge_etc(const std::string& old_image_etc, const std::string& old_live_etc,
                                 const std::string& target_etc) {
  auto image = BALLAST_TRY(open_dir(old_image_etc));
  auto live = BALLAST_TRY(open_dir(old_live_etc));
  auto target = BALLAST_TRY(open_dir(target_etc));
  Merger m;
  BALLAST_CHECK(with_context(m.merge_dir(image.get(), live.get(), target.get(), ""), "merging /etc"));
  return m.report;
}

}  // namespace ballast::snapshot
