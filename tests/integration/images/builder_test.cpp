#include <openssl/sha.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "common/file.hpp"
#include "images/builder.hpp"
#include "snapshot/subvolume.hpp"
#include "tests/integration/support/loop_btrfs.hpp"

using namespace ballast;
using ballast::testing::LoopBtrfs;

namespace {

std::string source_dir() { return BALLAST_SOURCE_DIR; }

// path → "type mode uid gid mtime size sha256-or-target": everything a reproducible build fixes.
std::map<std::string, std::string> describe_tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = std::filesystem::recursive_directory_iterator(root); it != std::filesystem::recursive_directory_iterator(); ++it) {
    std::string p = it->path().string();
    struct stat st;
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    std::string what = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + " " + std::to_string(st.st_gid) +
                       " " + std::to_string(st.st_mtim.tv_sec) + " " + std::to_string(st.st_size);
    if (S_ISREG(st.st_mode)) {
      auto data = read_file(p, 64 << 20);
      REQUIRE(data);
      unsigned char md[SHA256_DIGEST_LENGTH];
      SHA256(reinterpret_cast<const unsigned char*>(data->data()), data->size(), md);
      what += " " + std::string(reinterpret_cast<char*>(md), sizeof(md));
    } else if (S_ISLNK(st.st_mode)) {
      what += " -> " + std::filesystem::read_symlink(it->path()).string();
    }
    out[p.substr(root.size())] = what;
  }
  return out;
}

Result<images::BuiltImage> build_minimal(const std::string& output, const std::string& version) {
  auto def = images::load_definition(source_dir() + "/images/minimal.toml");
  REQUIRE(def);
  images::BuildOptions opts;
  opts.version = version;
  opts.output = output;
  opts.source_date_epoch = 1700000000;
  return images::build_image(*def, opts);
}

}  // namespace

TEST_CASE("the minimal image builds into a read-only subvolume with os-release and a normalised kernel") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  std::string out = (*fs)->mount_point() + "/minimal-1.0";
  auto built = build_minimal(out, "1.0");
  REQUIRE(built);
  CHECK(*snapshot::is_subvolume(out));
  CHECK(*snapshot::is_read_only(out));
  auto os_release = read_file(out + "/usr/lib/os-release");
  REQUIRE(os_release);
  CHECK_THAT(*os_release, Catch::Contains("IMAGE_ID=\"minimal\"\n"));
  CHECK_THAT(*os_release, Catch::Contains("IMAGE_VERSION=\"1.0\"\n"));
  CHECK(path_exists(out + "/usr/lib/modules/" + built->kernel_version + "/vmlinuz"));
  CHECK(path_exists(out + "/usr/lib/modules/" + built->kernel_version + "/initrd.img"));
  CHECK(*read_file(out + "/usr/lib/kernel/cmdline") == "console=ttyS0 quiet\n");
  CHECK(*read_file(out + "/etc/motd") == "ballast minimal image\n");  // [[files]]
  CHECK(path_exists(out + "/etc/fstab"));                               // the overlay
  CHECK(std::filesystem::read_symlink(out + "/usr/bin/sh") == "busybox");
}

TEST_CASE("two builds of the same definition give identical trees") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  std::string a = (*fs)->mount_point() + "/a", b = (*fs)->mount_point() + "/b";
  REQUIRE(build_minimal(a, "1.0"));
  REQUIRE(build_minimal(b, "1.0"));
  auto ta = describe_tree(a), tb = describe_tree(b);
  CHECK(ta.size() > 100);
  CHECK(ta == tb);
  CHECK(ta.at("/etc/motd").find(" 1700000000 ") != std::string::npos);
}

TEST_CASE("a build that fails midway leaves no subvolume behind") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  auto def = images::parse_definition("name = \"broken\"\n[[files]]\npath = \"/etc/x\"\nsource = \"/nonexistent/file\"\n",
                                      (*fs)->base_dir() + "/broken.toml");
  REQUIRE(def);
  images::BuildOptions opts;
  opts.version = "1";
  opts.output = (*fs)->mount_point() + "/broken-1";
  auto built = images::build_image(*def, opts);
  REQUIRE_FALSE(built);
  CHECK_THAT(built.error().describe(), Catch::Contains("/nonexistent/file"));
  CHECK(list_dir((*fs)->mount_point())->empty());
}

TEST_CASE("an image is never built over an existing path or outside Btrfs") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  REQUIRE(make_dirs((*fs)->mount_point() + "/taken"));
  auto taken = build_minimal((*fs)->mount_point() + "/taken", "1.0");
  REQUIRE_FALSE(taken);
  CHECK(taken.error().code == "image.output-exists");
  auto not_btrfs = build_minimal((*fs)->base_dir() + "/image", "1.0");
  REQUIRE_FALSE(not_btrfs);
  CHECK(not_btrfs.error().code == "image.not-btrfs");
}
