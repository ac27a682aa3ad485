#include "tests/integration/snapshot/tree_builders.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>

namespace ballast::testing {

namespace {

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

void put(const std::string& path, const std::string& data, off_t at = 0, bool trunc = true) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0) | O_CLOEXEC, 0644);
  INFO(path);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, data.data(), data.size(), at) == static_cast<ssize_t>(data.size()));
  ::close(fd);
}

void ok(int r, const std::string& what) {
  INFO(what << ": " << std::strerror(errno));
  REQUIRE(r == 0);
}

void times(const std::string& p, long sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec + 7, nsec / 2}};
  ok(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), "utimensat " + p);
}

void clone_range(const std::string& src, const std::string& dst, uint64_t so, uint64_t len, uint64_t dof) {
  int s = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  int d = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(s >= 0);
  REQUIRE(d >= 0);
  file_clone_range r{s, so, len, dof};
  ok(::ioctl(d, FICLONERANGE, &r), "clone " + src + " -> " + dst);
  ::close(s);
  ::close(d);
}

void make_socket(const std::string& p) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  REQUIRE(p.size() < sizeof(a.sun_path));
  std::memcpy(a.sun_path, p.c_str(), p.size());
  ok(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), "bind " + p);
  ::close(s);
}

void xattr(const std::string& p, const std::string& name, const std::string& v) {
  ok(::lsetxattr(p.c_str(), name.c_str(), v.data(), v.size(), 0), "setxattr " + name + " on " + p);
}

}  // namespace

void build_tree_v1(const std::string& r) {
  std::string deep = r;
  for (int i = 0; i < 30; ++i) {
    deep += "/deep" + std::to_string(i);
    ok(::mkdir(deep.c_str(), 0755), "mkdir " + deep);
  }
  put(deep + "/bottom", "at the bottom\n");
  put(r + "/" + std::string(255, 'L'), "long name\n");
  put(r + "/empty", "");
  put(r + "/four-k", random_bytes(4096, 1));
  put(r + "/sixty-four-k", random_bytes(65536, 2));
  put(r + "/big", random_bytes(3 << 20, 3));
  put(r + "/text", std::string(300000, 'a') + "compressible\n");
  // sparse: data at the start, in the middle and at the end, holes between
  put(r + "/sparse", random_bytes(8192, 4));
  put(r + "/sparse", random_bytes(4096, 5), 5 << 20, false);
  ok(::truncate((r + "/sparse").c_str(), 9 << 20), "truncate sparse");
  put(r + "/sparse", "tail", (9 << 20) - 4, false);
  put(r + "/all-hole", "");
  ok(::truncate((r + "/all-hole").c_str(), 1 << 20), "truncate all-hole");
  // hardlinks
  ok(::mkdir((r + "/links").c_str(), 0755), "mkdir links");
  put(r + "/links/one", "linked\n");
  ok(::link((r + "/links/one").c_str(), (r + "/links/two").c_str()), "link");
  ok(::link((r + "/links/one").c_str(), (r + "/three").c_str()), "link");
  // reflinks: whole file and a range
  put(r + "/ref-src", random_bytes(1 << 20, 6));
  clone_range(r + "/ref-src", r + "/ref-whole", 0, 0, 0);
  put(r + "/ref-part", random_bytes(256 << 10, 7));
  clone_range(r + "/ref-src", r + "/ref-part", 128 << 10, 256 << 10, 64 << 10);
  // special files
  ok(::mkfifo((r + "/fifo").c_str(), 0640), "mkfifo");
  make_socket(r + "/sock");
  ok(::mknod((r + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), "mknod c");
  ok(::mknod((r + "/loopdev").c_str(), S_IFBLK | 0660, makedev(7, 200)), "mknod b");
  // symlinks: relative, absolute, dangling, into a directory
  ok(::symlink("three", (r + "/sym-rel").c_str()), "symlink");
  ok(::symlink("/etc/passwd", (r + "/sym-abs").c_str()), "symlink");
  ok(::symlink("does/not/exist", (r + "/sym-dangling").c_str()), "symlink");
  ok(::symlink("deep0/deep1", (r + "/sym-dir").c_str()), "symlink");
  // xattrs
  xattr(r + "/text", "user.comment", "hello");
  xattr(r + "/text", "user.empty", "");
  xattr(r + "/links", "user.dir", std::string(200, 'x'));
  xattr(r + "/sym-rel", "trusted.onlink", "t");
  put(r + "/capable", random_bytes(1000, 8));
  // security.capability v2: cap_net_bind_service permitted+effective
  std::string cap("\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  ok(::chmod((r + "/capable").c_str(), 0755), "chmod");
  xattr(r + "/capable", "security.capability", cap);
  // modes and owners
  put(r + "/setuid", "s");
  ok(::chmod((r + "/setuid").c_str(), 04755), "chmod");
  put(r + "/setgid", "g");
  ok(::chown((r + "/setgid").c_str(), 0, 1234), "chown");
  ok(::chmod((r + "/setgid").c_str(), 02750), "chmod");
  ok(::mkdir((r + "/sticky").c_str(), 01777), "mkdir");
  ok(::chmod((r + "/sticky").c_str(), 01777), "chmod");
  put(r + "/noperm", "0");
  ok(::chmod((r + "/noperm").c_str(), 0), "chmod");
  put(r + "/owned", "o");
  ok(::chown((r + "/owned").c_str(), 4321, 8765), "chown");
  ok(::lchown((r + "/sym-abs").c_str(), 55, 66), "lchown");
  // NOCOW (chattr +C) must be set while the file is empty
  put(r + "/nocow", "");
  {
    int fd = ::open((r + "/nocow").c_str(), O_RDONLY | O_CLOEXEC);
    long flags = FS_NOCOW_FL;
    ok(::ioctl(fd, FS_IOC_SETFLAGS, &flags), "chattr +C");
    ::close(fd);
  }
  put(r + "/nocow", random_bytes(20000, 9), 0, false);
  // things later changes touch
  ok(::mkdir((r + "/a").c_str(), 0755), "mkdir");
  ok(::mkdir((r + "/a/b").c_str(), 0755), "mkdir");
  ok(::mkdir((r + "/a/b/c").c_str(), 0755), "mkdir");
  put(r + "/a/b/c/file", "in c\n");
  put(r + "/x", "I am x\n");
  put(r + "/y", "I am y, longer\n");
  put(r + "/trunc-shrink", random_bytes(100000, 10));
  put(r + "/trunc-grow", "short");
  put(r + "/to-delete", "bye");
  ok(::mkdir((r + "/dir-to-delete").c_str(), 0755), "mkdir");
  put(r + "/dir-to-delete/inner", "bye");
  put(r + "/punch", random_bytes(1 << 20, 11));
  // times last, with nanoseconds, on files, a symlink and directories
  times(r + "/text", 1000000000, 123456789);
  times(r + "/sym-rel", 1100000000, 5);
  times(r + "/empty", 1, 999999999);
  times(deep, 1200000000, 42);
  times(r + "/links", 1300000000, 0);
}

void change_tree_v2(const std::string& r) {
  put(r + "/big", random_bytes(100000, 20), 1 << 20, false);  // rewrite the middle
  put(r + "/four-k", "appended", 4096, false);
  ok(::truncate((r + "/trunc-shrink").c_str(), 1000), "truncate");
  ok(::truncate((r + "/trunc-grow").c_str(), 300000), "truncate");
  {
    int fd = ::open((r + "/punch").c_str(), O_WRONLY | O_CLOEXEC);
    ok(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 << 10, 512 << 10), "punch");
    ::close(fd);
  }
  ok(::renameat2(AT_FDCWD, (r + "/x").c_str(), AT_FDCWD, (r + "/y").c_str(), RENAME_EXCHANGE), "swap x y");
  ok(::unlink((r + "/to-delete").c_str()), "unlink");
  ok(::unlink((r + "/dir-to-delete/inner").c_str()), "unlink");
  ok(::rmdir((r + "/dir-to-delete").c_str()), "rmdir");
  ok(::unlink((r + "/links/two").c_str()), "unlink link");
  ok(::link((r + "/links/one").c_str(), (r + "/deep0/new-link").c_str()), "link");
  ok(::chmod((r + "/owned").c_str(), 0600), "chmod");
  ok(::chown((r + "/owned").c_str(), 1, 2), "chown");
  ok(::lremovexattr((r + "/text").c_str(), "user.comment"), "removexattr");
  xattr(r + "/text", "user.new", "new value");
  xattr(r + "/links", "user.dir", "changed");
  clone_range(r + "/ref-src", r + "/ref-new", 0, 512 << 10, 0);
  ok(::unlink((r + "/sym-dangling").c_str()), "unlink");
  ok(::symlink("now/points/elsewhere", (r + "/sym-dangling").c_str()), "symlink");
  put(r + "/brand-new", random_bytes(70000, 21));
  ok(::rename((r + "/fifo").c_str(), (r + "/deep0/deep1/fifo-moved").c_str()), "rename fifo");
  times(r + "/big", 1400000000, 1);
  times(r + "/text", 1500000000, 2);
}

void change_tree_v3(const std::string& r) {
  // a/b/c → b2 (former child) now holds a: a directory cycle the stream must untangle
  ok(::rename((r + "/a/b").c_str(), (r + "/b2").c_str()), "rename");
  ok(::rename((r + "/a").c_str(), (r + "/b2/c/a").c_str()), "rename");
  ok(::rename((r + "/three").c_str(), (r + "/y").c_str()), "rename over");
  ok(::unlink((r + "/empty").c_str()), "unlink");
  ok(::mkdir((r + "/empty").c_str(), 0700), "mkdir");  // a file replaced by a directory
  put(r + "/empty/inside", "inside\n");
  ok(::rename((r + "/deep0").c_str(), (r + "/links/deep0-moved").c_str()), "rename deep");
  put(r + "/sixty-four-k", "", 0, true);
}

void write_image_version(const std::string& root, const std::string& version) {
  for (const char* dir : {"/usr", "/usr/lib"})
    if (::mkdir((root + dir).c_str(), 0755) != 0) ok(errno == EEXIST ? 0 : -1, std::string("mkdir ") + dir);
  put(root + "/usr/lib/os-release", "ID=test\nIMAGE_VERSION=" + version + "\n");
}

}  // namespace ballast::testing
