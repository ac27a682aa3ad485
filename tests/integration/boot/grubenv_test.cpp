// grub-editenv (grub-common) is the reference reader and writer of grubenv.
#include <sstream>

#include <catch2/catch.hpp>

#include "boot/grubenv.hpp"
#include "common/file.hpp"
#include "common/process.hpp"

using namespace ballast;
using namespace ballast::boot;

TEST_CASE("grub-editenv reads the grubenv ballast writes", "[boot][grubenv]") {
  auto dir = make_temp_dir("grubenv");
  REQUIRE(dir);
  std::string path = path_join(*dir, "grubenv");
  GrubEnv env{{"saved_entry", "ballast-2+3-0"}, {"boot_counter", "3"}, {"boot_success", "0"},
              {"kernelopts", "root=UUID=x ro quiet"}, {"empty", ""}};
  REQUIRE(write_grubenv(path, env));
  CHECK(read_file(path)->size() == 1024);
  auto listed = run_checked({"grub-editenv", path, "list"});
  REQUIRE(listed);
  GrubEnv theirs;
  std::istringstream lines(listed->out);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    REQUIRE(eq != std::string::npos);
    theirs[line.substr(0, eq)] = line.substr(eq + 1);
  }
  CHECK(theirs == env);
  // grub-editenv can modify what ballast wrote, keeping the size.
  REQUIRE(run_checked({"grub-editenv", path, "set", "next_entry=ballast-1"}));
  CHECK(read_file(path)->size() == 1024);
  CHECK(read_grubenv(path)->at("next_entry") == "ballast-1");
  (void)remove_tree(*dir);
}

TEST_CASE("ballast reads the grubenv grub-editenv writes, escapes included", "[boot][grubenv]") {
  auto dir = make_temp_dir("grubenv");
  REQUIRE(dir);
  std::string path = path_join(*dir, "grubenv");
  REQUIRE(run_checked({"grub-editenv", path, "create"}));
  REQUIRE(run_checked({"grub-editenv", path, "set", "saved_entry=ballast-1", "boot_success=1",
                       "odd=back\\slash", "multi=line1\nline2"}));
  REQUIRE(run_checked({"grub-editenv", path, "unset", "boot_success"}));
  auto env = read_grubenv(path);
  REQUIRE(env);
  CHECK(env->at("saved_entry") == "ballast-1");
  CHECK(env->count("boot_success") == 0);
  CHECK(env->at("odd") == "back\\slash");
  CHECK(env->at("multi") == "line1\nline2");
  // And back: what ballast writes from it, grub-editenv lists the same.
  REQUIRE(write_grubenv(path, *env));
  auto listed = run_checked({"grub-editenv", path, "list"});
  REQUIRE(listed);
  CHECK(listed->out.find("saved_entry=ballast-1\n") != std::string::npos);
  CHECK(listed->out.find("odd=back\\slash\n") != std::string::npos);
  (void)remove_tree(*dir);
}
