#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "tests/temp_dir.hpp"

using namespace ballast;
using ballast::testing::TempDir;

TEST_CASE("an atomic write replaces the content and leaves no temporary file") {
  TempDir t;
  std::string f = path_join(t.path, "state.json");
  REQUIRE(write_file_atomic(f, "one"));
  REQUIRE(write_file_atomic(f, "two", 0600));
  CHECK(*read_file(f) == "two");
  struct stat st;
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(*list_dir(t.path) == std::vector<std::string>{"state.json"});
}

TEST_CASE("an atomic write into a missing directory fails and names the path") {
  auto st = write_file_atomic("/nonexistent-ballast-dir/x", "data");
  REQUIRE_FALSE(st);
  CHECK(st.error().code == "io.open");
}

TEST_CASE("open_beneath refuses absolute paths, dot-dot and symlinks leading outside") {
  TempDir t;
  REQUIRE(make_dirs(path_join(t.path, "root/sub")));
  REQUIRE(write_file_atomic(path_join(t.path, "secret"), "s"));
  REQUIRE(write_file_atomic(path_join(t.path, "root/sub/ok"), "fine"));
  REQUIRE(::symlink("../../secret", path_join(t.path, "root/sub/escape").c_str()) == 0);
  REQUIRE(::symlink("ok", path_join(t.path, "root/sub/inside").c_str()) == 0);
  auto root = open_dir(path_join(t.path, "root"));
  REQUIRE(root);

  CHECK(open_beneath(root->get(), "sub/ok", O_RDONLY));
  CHECK(open_beneath(root->get(), "sub/inside", O_RDONLY));
  for (const char* bad : {"../secret", "/etc/passwd", "sub/escape", "sub/../../secret"}) {
    INFO(bad);
    auto fd = open_beneath(root->get(), bad, O_RDONLY);
    REQUIRE_FALSE(fd);
    CHECK(fd.error().code == "io.escape");
  }
}

TEST_CASE("read_file refuses files larger than its limit") {
  TempDir t;
  std::string f = path_join(t.path, "big");
  REQUIRE(write_file_atomic(f, std::string(1000, 'x')));
  auto r = read_file(f, 999);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "io.too-large");
}

TEST_CASE("path_join puts exactly one slash between parts") {
  CHECK(path_join("/a/", "/b") == "/a/b");
  CHECK(path_join("/", "x") == "/x");
  CHECK(path_join("a", "") == "a");
}

TEST_CASE("remove_tree removes a whole tree without following symlinks out of it") {
  TempDir t;
  TempDir outside;
  REQUIRE(make_dirs(path_join(t.path, "a/b/c")));
  REQUIRE(write_file_atomic(path_join(t.path, "a/b/c/f"), "x"));
  REQUIRE(write_file_atomic(path_join(outside.path, "keep"), "keep"));
  REQUIRE(::symlink(outside.path.c_str(), path_join(t.path, "a/link").c_str()) == 0);
  REQUIRE(remove_tree(t.path));
  CHECK_FALSE(path_exists(t.path));
  CHECK(*read_file(path_join(outside.path, "keep")) == "keep");
  CHECK(remove_tree(t.path));  // missing is fine
}
