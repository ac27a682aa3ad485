#include <catch2/catch.hpp>

#include "boot/grubenv.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::boot;

TEST_CASE("grubenv is exactly 1024 bytes with its header and '#' padding, and round-trips", "[boot][grubenv]") {
  GrubEnv env{{"saved_entry", "ballast-2"}, {"weird", "a\\b\nc=d"}, {"empty", ""}};
  auto block = format_grubenv(env);
  REQUIRE(block);
  CHECK(block->size() == 1024);
  CHECK(block->rfind("# GRUB Environment Block\n", 0) == 0);
  CHECK(block->back() == '#');
  CHECK(block->find("weird=a\\\\b\\\nc=d\n") != std::string::npos);
  auto back = parse_grubenv(*block);
  REQUIRE(back);
  CHECK(*back == env);
}

TEST_CASE("grubenv that does not fit, or malformed blocks, are refused", "[boot][grubenv]") {
  CHECK(format_grubenv({{"big", std::string(1000, 'x')}}).error().code == "boot.grubenv-full");
  CHECK(format_grubenv({{"a=b", "x"}}).error().code == "boot.bad-grubenv");
  CHECK(format_grubenv({{"", "x"}}).error().code == "boot.bad-grubenv");
  auto good = *format_grubenv({{"a", "1"}});
  CHECK(parse_grubenv(good.substr(0, 1023)).error().code == "boot.bad-grubenv");
  CHECK(parse_grubenv(good + "#").error().code == "boot.bad-grubenv");
  std::string no_header = good;
  no_header[0] = 'X';
  CHECK(parse_grubenv(no_header).error().code == "boot.bad-grubenv");
  std::string no_equals = "# GRUB Environment Block\nnovalue\n";
  no_equals.append(1024 - no_equals.size(), '#');
  CHECK(parse_grubenv(no_equals).error().code == "boot.bad-grubenv");
  std::string unterminated = "# GRUB Environment Block\n";
  unterminated.append(1024 - unterminated.size(), 'x');
  CHECK(parse_grubenv(unterminated).error().code == "boot.bad-grubenv");
}

TEST_CASE("a missing grubenv reads as empty and writing replaces it whole", "[boot][grubenv]") {
  auto dir = make_temp_dir("grubenv");
  REQUIRE(dir);
  std::string path = path_join(*dir, "grubenv");
  CHECK(read_grubenv(path)->empty());
  REQUIRE(write_grubenv(path, {{"a", "1"}}));
  REQUIRE(write_grubenv(path, {{"b", "2"}}));
  CHECK(*read_grubenv(path) == GrubEnv{{"b", "2"}});
  CHECK(read_file(path)->size() == 1024);
  CHECK(!write_grubenv(path, {{"big", std::string(2000, 'x')}}));
  CHECK(*read_grubenv(path) == GrubEnv{{"b", "2"}});  // a refused write leaves the old block
  (void)remove_tree(*dir);
}
