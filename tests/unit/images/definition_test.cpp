#include <catch2/catch.hpp>

#include "images/builder.hpp"
#include "images/definition.hpp"

using namespace ballast;
using namespace ballast::images;

TEST_CASE("a full image definition is read with paths relative to its file") {
  auto def = parse_definition(R"(
name = "demo"
overlays = ["overlays/a", "/abs/b"]
[base]
kind = "debootstrap"
suite = "bookworm"
packages = ["systemd", "linux-image-amd64"]
packages_after = ["dracut"]
files = { "/etc/dracut.conf.d/small.conf" = "base/small.conf" }
[kernel]
cmdline = "console=ttyS0"
[os_release]
PRETTY_NAME = "Demo"
[[files]]
path = "/etc/motd"
content = "hi\n"
mode = 0o600
[services]
enable = ["ballast.service"]
[ballast]
root_json = "keys/root.json"
install = true
)", "/src/images/demo.toml");
  REQUIRE(def);
  CHECK(def->name == "demo");
  CHECK(def->base.kind == BaseKind::debootstrap);
  CHECK(def->base.packages == std::vector<std::string>{"systemd", "linux-image-amd64"});
  CHECK(def->base.packages_after == std::vector<std::string>{"dracut"});
  CHECK(def->base.files_before ==
        std::map<std::string, std::string>{{"/etc/dracut.conf.d/small.conf", "/src/images/base/small.conf"}});
  CHECK(def->overlays == std::vector<std::string>{"/src/images/overlays/a", "/abs/b"});
  REQUIRE(def->files.size() == 1);
  CHECK(def->files[0].mode == 0600);
  CHECK(def->root_json == "/src/images/keys/root.json");
  CHECK(def->os_release.at("PRETTY_NAME") == "Demo");
  CHECK(def->install_ballast);
}

TEST_CASE("a bad image definition is an error naming file, line and key") {
  struct Case {
    const char* text;
    const char* code;
    const char* needle;
  };
  const Case cases[] = {
      {"name = \"x\"\n[base]\nkind = \"floppy\"\n", "image.bad-value", "x.toml:3: key 'base.kind'"},
      {"name = \"x\"\n[base]\nsuite = 12\n", "image.wrong-type", "x.toml:3: key 'base.suite' must be a string"},
      {"name = \"x\"\n[base]\nkind = \"directory\"\npath = \"/t\"\npackages_after = [\"dracut\"]\n", "image.bad-value",
       "only for kind debootstrap"},
      {"name = \"x\"\n[base]\nkind = \"busybox\"\nfiles = { \"/etc/a\" = \"a\" }\n", "image.bad-value",
       "only for kind debootstrap"},
      {"name = \"x\"\n[base]\nkind = \"debootstrap\"\nfiles = { \"etc/a\" = \"a\" }\n", "image.bad-value",
       "absolute path inside the image"},
      {"name = \"x\"\n[base]\nkind = \"debootstrap\"\nfiles = { \"/etc/..\" = \"a\" }\n", "image.bad-value",
       "without '..'"},
      {"name = \"x\"\n[base]\nkind = \"debootstrap\"\nfiles = { \"/etc/a\" = 1 }\n", "image.wrong-type",
       "key 'base.files./etc/a' must be a string"},
      {"name = \"x\"\ncolour = \"red\"\n", "image.unknown-key", "x.toml:2: unknown key 'colour'"},
      {"name = \"x\"\n[kernel]\nstand_in = true\n", "image.missing-key", "kernel.version"},
      {"name = \"x\"\n[[files]]\npath = \"etc/relative\"\ncontent = \"\"\n", "image.bad-value", "x.toml:2"},
      {"name = \"x\"\n[[files]]\npath = \"/etc/../../escape\"\ncontent = \"\"\n", "image.bad-value", "without '..'"},
      {"name = \"x\"\n[[files]]\npath = \"/etc/a\"\n", "image.bad-value", "exactly one of 'content' and 'source'"},
      {"name = \"x\"\n[os_release]\nIMAGE_VERSION = \"9\"\n", "image.bad-value", "set by the builder"},
      {"name = \"Bad Name\"\n", "image.bad-value", "key 'name'"},
      {"description = \"no name\"\n", "image.missing-key", "'name' is required"},
      {"name = \"x\"\n[base\n", "image.syntax", "x.toml:2"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto def = parse_definition(c.text, "images/x.toml");
    REQUIRE_FALSE(def);
    CHECK(def.error().code == c.code);
    CHECK_THAT(def.error().message, Catch::Contains(c.needle));
  }
}
