// grub-editenv (grub-common) is the reference reader and writer of grubenv.
#include <sstream>

#include <catch2/catch.hpp>

#include "boot/boot_control.hpp"
#include "boot/grubenv.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/version_literal.hpp"

using namespace ballast::version_literals;

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

TEST_CASE("grub-editenv reads the trial the GRUB backend sets up", "[boot][grubenv][grub]") {
  auto dir = make_temp_dir("grubboot");
  REQUIRE(dir);
  BootPaths paths;
  paths.esp_path = path_join(*dir, "boot");
  paths.efivars_path = path_join(*dir, "efivars");
  paths.cmdline_path = path_join(*dir, "cmdline");
  REQUIRE(make_dirs(path_join(paths.esp_path, "grub2")));
  std::string kernel = path_join(*dir, "vmlinuz");
  REQUIRE(write_file_atomic(kernel, "k"));
  auto control = make_grub_control(paths);
  REQUIRE(control->install(KernelSpec{"1"_v, kernel, "", "", "", 0}));
  REQUIRE(control->bless("1"_v));
  REQUIRE(control->install(KernelSpec{"2"_v, kernel, "", "", "", 4}));
  std::string env = path_join(paths.esp_path, "grub2/grubenv");
  auto listed = run_checked({"grub-editenv", env, "list"});
  REQUIRE(listed);
  CHECK(listed->out.find("saved_entry=ballast-2+4-0\n") != std::string::npos);
  CHECK(listed->out.find("boot_counter=4\n") != std::string::npos);
  CHECK(listed->out.find("boot_success=0\n") != std::string::npos);
  // GRUB counting down (here: grub-editenv standing in for save_env) shows as tries done.
  REQUIRE(run_checked({"grub-editenv", env, "set", "boot_counter=1"}));
  auto entries = control->entries();
  REQUIRE(entries);
  CHECK(entries->front().tries_left == 1);
  CHECK(entries->front().tries_done == 3);
  (void)remove_tree(*dir);
}
