#include <openssl/sha.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "common/file.hpp"
#include "common/process.hpp"
#include "images/builder.hpp"
#include "snapshot/subvolume.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using ballast::testing::LoopBtrfs;

namespace {
using namespace ballast::version_literals;

std::string source_dir() { return BALLAST_SOURCE_ROOT; }

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
  opts.version = make_version(version);
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
  opts.version = "1"_v;
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

namespace {

Result<images::BuiltImage> build_text(const std::string& text, const std::string& dir, const std::string& output,
                                      const std::string& version, const std::string& parent) {
  auto def = images::parse_definition(text, dir + "/def.toml");
  REQUIRE(def);
  images::BuildOptions opts;
  opts.version = make_version(version);
  opts.output = output;
  opts.parent = parent;
  opts.source_date_epoch = 1700000000;
  return images::build_image(*def, opts);
}

}  // namespace

TEST_CASE("an image built over its parent equals a fresh build and its send delta carries only the changes") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string m = (*fs)->mount_point(), dir = (*fs)->base_dir();
  const std::string base = "name = \"t\"\n[base]\nbusybox = \"/bin/busybox\"\n[kernel]\nversion = \"k\"\nstand_in = true\n";
  const std::string v1 = base +
                         "[[files]]\npath = \"/etc/changed\"\ncontent = \"one\"\n"
                         "[[files]]\npath = \"/etc/removed\"\ncontent = \"gone in v2\"\n"
                         "[[files]]\npath = \"/usr/share/kept\"\ncontent = \"" + std::string(100000, 'k') + "\"\n";
  const std::string v2 = base +
                         "[[files]]\npath = \"/etc/changed\"\ncontent = \"two\"\nmode = 0o600\n"
                         "[[files]]\npath = \"/etc/added\"\ncontent = \"new in v2\"\n"
                         "[[files]]\npath = \"/usr/share/kept\"\ncontent = \"" + std::string(100000, 'k') + "\"\n";
  REQUIRE(build_text(v1, dir, m + "/v1", "1", ""));
  auto over = build_text(v2, dir, m + "/v2", "2", m + "/v1");
  if (!over) FAIL(over.error().describe());
  REQUIRE(build_text(v2, dir, m + "/v2-fresh", "2", ""));
  CHECK(describe_tree(m + "/v2") == describe_tree(m + "/v2-fresh"));
  CHECK(*snapshot::is_read_only(m + "/v2"));
  CHECK(list_dir(m)->size() == 3);  // no leftovers of the carried build

  auto delta = run_checked({"btrfs", "send", "-q", "-p", m + "/v1", "-f", dir + "/delta", m + "/v2"});
  REQUIRE(delta);
  auto dump = run_checked({"btrfs", "receive", "--dump", "-f", dir + "/delta"});
  REQUIRE(dump);
  INFO(dump->out);
  CHECK_THAT(dump->out, Catch::Contains("./v2/etc/changed"));
  CHECK_THAT(dump->out, Catch::Contains("./v2/etc/added"));
  CHECK_THAT(dump->out, Catch::Contains("unlink          ./v2/etc/removed"));
  CHECK_THAT(dump->out, !Catch::Contains("/usr/share/kept"));  // unchanged: not in the delta
  CHECK_THAT(dump->out, !Catch::Contains("/usr/bin/busybox"));
  struct stat st;
  REQUIRE(::stat((dir + "/delta").c_str(), &st) == 0);
  CHECK(st.st_size < 4096);
}

TEST_CASE("enabling ballast's units links them where their WantedBy= and RequiredBy= say, as systemctl enable does") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  auto def = images::load_definition(source_dir() + "/images/minimal.toml");
  REQUIRE(def);
  def->install_ballast = true;
  def->enable_services = {"ballast.service", "ballast-health.service"};
  images::BuildOptions opts;
  opts.version = "1.0"_v;
  opts.output = (*fs)->mount_point() + "/minimal-1.0";
  opts.source_date_epoch = 1700000000;
  opts.ballast_binary = "/proc/self/exe";
  opts.units_dir = source_dir() + "/units";
  auto built = images::build_image(*def, opts);
  REQUIRE(built);
  const std::string sys = opts.output + "/etc/systemd/system/";
  CHECK(std::filesystem::read_symlink(sys + "multi-user.target.wants/ballast.service") ==
        "/usr/lib/systemd/system/ballast.service");
  CHECK(std::filesystem::read_symlink(sys + "boot-complete.target.requires/ballast-health.service") ==
        "/usr/lib/systemd/system/ballast-health.service");
  CHECK(path_exists(opts.output + "/usr/share/dbus-1/system.d/dev.ballast.Agent1.conf"));
  CHECK(path_exists(opts.output + "/usr/lib/tmpfiles.d/ballast.conf"));
}

namespace {

// A debootstrap stand-in first on PATH: records each call and makes a tiny root, or fails.
struct FakeDebootstrap {
  std::string dir, calls, cache;
  explicit FakeDebootstrap(bool succeed) {
    dir = *make_temp_dir("ballast-fake-debootstrap");
    calls = dir + "/calls";
    cache = dir + "/cache";
    REQUIRE(make_dirs(dir + "/bin"));
    std::string script = "#!/bin/sh\necho \"$*\" >> " + calls + "\n";
    script += succeed ? "for a; do root=$prev; prev=$a; done\nmkdir -p \"$root/etc\" && echo fake-bookworm > \"$root/etc/debian_version\"\n"
                      : "echo 'E: Failed getting release file' >&2\nexit 1\n";
    REQUIRE(write_file_atomic(dir + "/bin/debootstrap", script, 0755));
    REQUIRE(write_file_atomic(dir + "/def.toml",
                              "name = \"fake\"\n[base]\nkind = \"debootstrap\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\n"
                              "mirror = \"http://deb.example/debian\"\npackages = [\"systemd\", \"btrfs-progs\"]\n"));
  }
  ~FakeDebootstrap() { (void)remove_tree(dir); }
  Result<ProcessResult> prepare() {
    return run_process({std::string(BALLAST_BUILD_ROOT) + "/agent/ballast", "image", "prepare", dir + "/def.toml",
                        "--cache-dir", cache},
                       SpawnOptions{.extra_env = {"PATH=" + dir + "/bin:" + std::getenv("PATH")}});
  }
  size_t call_count() {
    auto text = read_file(calls);
    return text ? static_cast<size_t>(std::count(text->begin(), text->end(), '\n')) : 0;
  }
};

}  // namespace

TEST_CASE("`ballast image prepare` runs debootstrap once and caches its root for every later build") {
  FakeDebootstrap fake(true);
  auto first = fake.prepare();
  REQUIRE(first);
  INFO(first->err);
  REQUIRE(first->exit_code == 0);
  REQUIRE(fake.call_count() == 1);
  auto call = read_file(fake.calls);
  CHECK(call->find("--include=btrfs-progs,systemd bookworm") != std::string::npos);
  auto cached = list_dir(fake.cache);
  REQUIRE(cached);
  REQUIRE(cached->size() == 1);
  auto listing = run_checked({"tar", "--list", "--file", fake.cache + "/" + cached->front()});
  REQUIRE(listing);
  CHECK(listing->out.find("./etc/debian_version") != std::string::npos);

  auto second = fake.prepare();
  REQUIRE(second);
  CHECK(second->exit_code == 0);
  CHECK(fake.call_count() == 1);
}

TEST_CASE("a failed debootstrap leaves nothing in the cache and is reported") {
  FakeDebootstrap fake(false);
  auto r = fake.prepare();
  REQUIRE(r);
  CHECK(r->exit_code == 1);
  CHECK(r->err.find("debootstrap") != std::string::npos);
  auto left = list_dir(fake.cache);
  CHECK((!left || left->empty()));
}
