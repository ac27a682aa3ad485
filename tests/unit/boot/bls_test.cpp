#include <catch2/catch.hpp>

#include "boot/bls.hpp"

using namespace ballast::boot;

TEST_CASE("entry file names yield stem and boot counter of any width", "[boot][bls]") {
  auto plain = parse_entry_name("ballast-2.0.conf");
  REQUIRE(plain);
  CHECK(plain->stem == "ballast-2.0");
  CHECK(!plain->counter);

  auto left_only = parse_entry_name("ballast-2.0+3.conf");
  REQUIRE(left_only);
  CHECK(left_only->stem == "ballast-2.0");
  CHECK(*left_only->counter == BootCounter{3, 0});

  auto wide = parse_entry_name("ballast-1_trc1+0007-00012.conf");
  REQUIRE(wide);
  CHECK(wide->stem == "ballast-1_trc1");
  CHECK(*wide->counter == BootCounter{7, 12});
  CHECK(version_of_stem(wide->stem) == std::optional<std::string>("1~rc1"));
  CHECK(!version_of_stem("other-1"));
}

TEST_CASE("malformed entry names are refused", "[boot][bls]") {
  for (const char* bad : {"ballast-1", "ballast-1+.conf", "ballast-1+x.conf", "ballast-1+3-.conf", "+3.conf",
                          "ballast-1+99999999999.conf", ".conf", "ballast-1+3-1-2.conf"}) {
    INFO(bad);
    auto r = parse_entry_name(bad);
    REQUIRE(!r);
    CHECK(r.error().code == "boot.bad-entry-name");
  }
}

TEST_CASE("counters are written in one canonical shape and read back", "[boot][bls]") {
  CHECK(format_entry_name("ballast-2", std::nullopt) == "ballast-2.conf");
  CHECK(format_entry_name("ballast-2", BootCounter{3, 0}) == "ballast-2+3-0.conf");
  CHECK(format_entry_name("ballast-2", BootCounter{0, 12}) == "ballast-2+0-12.conf");
  auto back = parse_entry_name(format_entry_name("ballast-2", BootCounter{15, 4}));
  REQUIRE(back);
  CHECK(*back->counter == BootCounter{15, 4});
}

TEST_CASE("entry text round-trips and keeps keys ballast does not interpret", "[boot][bls]") {
  auto e = parse_entry(
      "# written by someone\n"
      "title  Ballast 2\n"
      "version 2\n"
      "sort-key ballast\n"
      "linux /ballast/2/vmlinuz\n"
      "initrd /ballast/2/initrd.img\n"
      "initrd /ballast/2/extra.img\n"
      "options root=UUID=x ro\n"
      "options ballast.version=2\n"
      "devicetree /dtb\n\n");
  REQUIRE(e);
  CHECK(e->title == "Ballast 2");
  CHECK(e->initrd_paths.size() == 2);
  CHECK(e->options == "root=UUID=x ro ballast.version=2");
  REQUIRE(e->other.size() == 1);
  CHECK(e->other[0].first == "devicetree");
  auto again = parse_entry(format_entry(*e));
  REQUIRE(again);
  CHECK(format_entry(*again) == format_entry(*e));
  CHECK(again->linux_path == "/ballast/2/vmlinuz");
}

TEST_CASE("entries without linux, with a bare key or a NUL byte are refused", "[boot][bls]") {
  CHECK(parse_entry("title x\n").error().code == "boot.bad-entry");
  CHECK(parse_entry("linux /k\ntitle\n").error().code == "boot.bad-entry");
  CHECK(parse_entry(std::string("linux /k\0x\n", 10)).error().code == "boot.bad-entry");
}

TEST_CASE("versions are escaped into names systemd accepts and decoded back", "[boot][bls]") {
  CHECK(stem_of_version("1.0~rc1^p_2") == "ballast-1.0_trc1_cp__2");
  for (const char* v : {"1", "1.0~rc1^p_2", "__", "~^", "a_t"}) {
    std::string stem = stem_of_version(v);
    CHECK(stem.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == std::string::npos);
    CHECK(version_of_stem(stem) == std::optional<std::string>(v));
  }
  CHECK(!version_of_stem("ballast-1_x"));
  CHECK(!version_of_stem("ballast-1_"));
}
