// Fixed VHDs as QEMU reads them: `ballast image convert --to vhd` on raw images of several sizes.
// (QEMU probes a fixed VHD as raw, its footer being at the end, so the format is named as Azure
// and `-drive format=vpc` name it; qemu-img 7.2 has no `check` for vpc, so `compare` proves the
// disk's bytes instead.)
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "images/vhd.hpp"
#include "tests/integration/support/ballast_cli.hpp"

using namespace ballast;
using ballast::testing::run_ballast;
using ballast::testing::run_ballast_ok;

namespace {

struct TempDir {
  std::string path = make_temp_dir("ballast-vhd-test").value();
  ~TempDir() { (void)remove_tree(path); }
};

// A sparse raw image of `size` bytes with a marker at its start and just before its end.
void make_raw(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  REQUIRE(fd);
  REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
  REQUIRE(::pwrite(fd.get(), "first", 5, 0) == 5);
  REQUIRE(::pwrite(fd.get(), "last", 4, static_cast<off_t>(size - 4)) == 4);
}

nlohmann::json qemu_info(const std::string& path) {
  auto r = run_checked({"qemu-img", "info", "-f", "vpc", "--output=json", path});
  REQUIRE(r);
  return nlohmann::json::parse(r->out);
}

}  // namespace

TEST_CASE("image convert --to vhd writes a fixed VHD that qemu-img reads as vpc with the raw image's bytes, for several sizes") {
  TempDir t;
  const uint64_t sizes[] = {1ull << 20, (3ull << 20) + 512, (64ull << 20) - 4096, (5ull << 30) + 1};
  for (uint64_t size : sizes) {
    INFO("size " << size);
    const std::string raw = t.path + "/disk-" + std::to_string(size) + ".img";
    const std::string vhd = t.path + "/disk-" + std::to_string(size) + ".vhd";
    make_raw(raw, size);
    run_ballast_ok({"image", "convert", "--to", "vhd", raw});  // the output's default name: .img → .vhd
    const uint64_t expected = (size + (1ull << 20) - 1) / (1ull << 20) * (1ull << 20);
    auto info = qemu_info(vhd);
    CHECK(info["format"] == "vpc");
    CHECK(info["virtual-size"] == expected);
    CHECK(info.value("actual-size", uint64_t{0}) < (1ull << 20) + 65536);  // holes stayed holes
    // What a guest reads: the raw image, then zeros up to the whole MiB.
    if (size % 512 == 0) {
      auto same = run_process({"qemu-img", "compare", "-f", "raw", "-F", "vpc", raw, vhd});
      REQUIRE(same);
      INFO(same->out << same->err);
      CHECK(same->exit_code == 0);
    }
    CHECK(images::read_fixed_vhd(vhd).value() == expected);
    // The source is left as it was.
    struct stat st;
    REQUIRE(::stat(raw.c_str(), &st) == 0);
    CHECK(static_cast<uint64_t>(st.st_size) == size);
    (void)remove_if_exists(raw);
    (void)remove_if_exists(vhd);
  }
}

TEST_CASE("image convert refuses a VHD as its input, an existing output and an unknown format, writing nothing") {
  TempDir t;
  const std::string raw = t.path + "/a.img", vhd = t.path + "/a.vhd", other = t.path + "/b.vhd";
  make_raw(raw, 2ull << 20);
  run_ballast_ok({"image", "convert", "--to", "vhd", raw, "--output", vhd});
  auto before = read_file(vhd).value();

  auto again = run_ballast({"image", "convert", "--to", "vhd", vhd, "--output", other});
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.err, Catch::Contains("vhd.already-vhd"));
  CHECK_FALSE(path_exists(other));
  CHECK_FALSE(path_exists(other + ".partial"));

  auto exists = run_ballast({"image", "convert", "--to", "vhd", raw, "--output", vhd});
  CHECK(exists.exit_code != 0);
  CHECK_THAT(exists.err, Catch::Contains("vhd.output-exists"));
  CHECK(read_file(vhd).value() == before);

  auto format = run_ballast({"image", "convert", "--to", "qcow2", raw, "--output", other});
  CHECK(format.exit_code != 0);
  CHECK_FALSE(path_exists(other));
}

TEST_CASE("image convert of a fixed VHD onto itself is already done and changes nothing") {
  TempDir t;
  const std::string raw = t.path + "/a.img", vhd = t.path + "/a.vhd";
  make_raw(raw, 2ull << 20);
  run_ballast_ok({"image", "convert", "--to", "vhd", raw});
  auto before = read_file(vhd).value();
  auto r = run_ballast_ok({"image", "convert", "--to", "vhd", vhd});
  CHECK_THAT(r.out, Catch::Contains("already a fixed VHD"));
  CHECK(read_file(vhd).value() == before);
}

TEST_CASE("image convert of a missing raw image fails without an output") {
  TempDir t;
  auto r = run_ballast({"image", "convert", "--to", "vhd", t.path + "/none.img"});
  CHECK(r.exit_code != 0);
  CHECK_FALSE(path_exists(t.path + "/none.vhd"));
}
