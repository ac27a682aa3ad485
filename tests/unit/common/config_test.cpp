#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/config.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace std::chrono_literals;

namespace {

struct ConfigDirs {
  std::string root;
  std::vector<std::string> dirs;
  ConfigDirs() {
    root = *make_temp_dir("ballast-config-test");
    for (const char* d : {"usr", "etc", "run"}) {
      dirs.push_back(path_join(root, d));
      REQUIRE(make_dirs(dirs.back()));
    }
  }
  ~ConfigDirs() { (void)remove_tree(root); }
  void write(int dir, const std::string& name, const std::string& text) {
    REQUIRE(write_file_atomic(path_join(dirs[static_cast<size_t>(dir)], name), text));
  }
};

}  // namespace

TEST_CASE("without files every key has its schema default") {
  Config cfg;
  CHECK(cfg.get_string("update.channel") == "stable");
  CHECK(cfg.get_int("boot.tries") == 3);
  CHECK(cfg.get_duration("update.check_interval") == 1h);
  CHECK(cfg.get_string("reboot.strategy") == "immediate");
  CHECK_FALSE(cfg.has("node.wariness"));
  CHECK(cfg.entries().at("boot.tries").source == "default");
}

TEST_CASE("drop-ins merge in lexical file-name order, later values winning") {
  ConfigDirs d;
  d.write(0, "20-b.toml", "[update]\nchannel = \"beta\"\n");
  d.write(1, "10-a.toml", "[update]\nchannel = \"alpha\"\ncheck_interval = \"5m\"\n");
  auto cfg = Config::load(d.dirs);
  REQUIRE(cfg);
  CHECK(cfg->get_string("update.channel") == "beta");  // 20-b sorts after 10-a
  CHECK(cfg->get_duration("update.check_interval") == 5min);
  CHECK(cfg->entries().at("update.channel").source == path_join(d.dirs[0], "20-b.toml") + ":2");
  CHECK(cfg->files().size() == 2);
}

TEST_CASE("a later directory's file with the same name replaces the earlier one whole") {
  ConfigDirs d;
  d.write(0, "50-x.toml", "[update]\nchannel = \"vendor\"\n[boot]\ntries = 5\n");
  d.write(1, "50-x.toml", "[update]\nchannel = \"admin\"\n");
  auto cfg = Config::load(d.dirs);
  REQUIRE(cfg);
  CHECK(cfg->get_string("update.channel") == "admin");
  CHECK(cfg->get_int("boot.tries") == 3);  // the vendor file was not read at all
  CHECK(cfg->files() == std::vector<std::string>{path_join(d.dirs[1], "50-x.toml")});
}

TEST_CASE("a symlink to /dev/null masks the file of that name") {
  ConfigDirs d;
  d.write(0, "50-x.toml", "[boot]\ntries = 7\n");
  REQUIRE(::symlink("/dev/null", path_join(d.dirs[2], "50-x.toml").c_str()) == 0);
  auto cfg = Config::load(d.dirs);
  REQUIRE(cfg);
  CHECK(cfg->get_int("boot.tries") == 3);
  CHECK(cfg->files().empty());
}

TEST_CASE("files not ending in .toml are ignored and missing directories are fine") {
  ConfigDirs d;
  d.write(0, "README", "not toml at all [[[");
  auto dirs = d.dirs;
  dirs.push_back(path_join(d.root, "does-not-exist"));
  auto cfg = Config::load(dirs);
  REQUIRE(cfg);
  CHECK(cfg->files().empty());
}

TEST_CASE("hidden files, such as an editor's lock file, are not configuration") {
  ConfigDirs d;
  d.write(1, ".#10-a.toml", "this is not toml [[[");
  d.write(1, ".10-b.toml", "[boot]\ntries = 9\n");
  d.write(1, "10-c.toml", "[boot]\ntries = 5\n");
  auto cfg = Config::load(d.dirs);
  REQUIRE(cfg);
  CHECK(cfg->get_int("boot.tries") == 5);
  CHECK(cfg->files() == std::vector<std::string>{path_join(d.dirs[1], "10-c.toml")});
}

TEST_CASE("a FIFO, a directory or a dangling symlink named *.toml is skipped, not read") {
  ConfigDirs d;
  // A FIFO without a writer would block the reader forever: load() returning at all is the test.
  REQUIRE(::mkfifo(path_join(d.dirs[1], "10-fifo.toml").c_str(), 0644) == 0);
  REQUIRE(make_dirs(path_join(d.dirs[1], "20-dir.toml")));
  REQUIRE(::symlink("/nonexistent/x.toml", path_join(d.dirs[1], "30-dangling.toml").c_str()) == 0);
  d.write(0, "40-real.toml", "[boot]\ntries = 4\n");
  REQUIRE(::symlink(path_join(d.dirs[0], "40-real.toml").c_str(), path_join(d.dirs[2], "50-link.toml").c_str()) == 0);
  auto cfg = Config::load(d.dirs);
  REQUIRE(cfg);
  CHECK(cfg->get_int("boot.tries") == 4);
  CHECK(cfg->files() == std::vector<std::string>{path_join(d.dirs[0], "40-real.toml"), path_join(d.dirs[2], "50-link.toml")});
}

TEST_CASE("reading a file that must be regular refuses a FIFO at once") {
  ConfigDirs d;
  std::string fifo = path_join(d.root, "fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  auto r = read_regular_file(fifo);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "io.not-regular");
}

TEST_CASE("durations beyond their key's bound are refused naming file, line and key, also as integer seconds") {
  Config cfg;
  auto huge = cfg.merge_text("[update]\ncheck_interval = 9223372036854775807\n", "/etc/ballast/config.d/10-a.toml");
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == "config.bad-value");
  CHECK_THAT(huge.error().message, Catch::Contains("/etc/ballast/config.d/10-a.toml:2"));
  CHECK_THAT(huge.error().message, Catch::Contains("update.check_interval"));
  CHECK_THAT(huge.error().message, Catch::Contains("30d"));
  auto long_text = cfg.merge_text("[health]\ncheck_timeout = \"2h\"\n", "b.toml");
  REQUIRE_FALSE(long_text);
  CHECK_THAT(long_text.error().message, Catch::Contains("b.toml:2"));
  CHECK_THAT(long_text.error().message, Catch::Contains("health.check_timeout"));
  CHECK(cfg.get_duration("update.check_interval") == 1h);  // nothing was applied
  REQUIRE(cfg.merge_text("[update]\ncheck_interval = \"30d\"\n", "c.toml"));  // the bound itself is fine
}

TEST_CASE("zero where zero makes no sense, and 1h30, are refused naming file, line and key") {
  Config cfg;
  const std::pair<const char*, const char*> cases[] = {
      {"[repository]\nlow_speed_time = 0\n", "repository.low_speed_time"},
      {"[repository]\nlow_speed_time = \"0s\"\n", "repository.low_speed_time"},
      {"[update]\ncheck_interval = \"0s\"\n", "update.check_interval"},
      {"[health]\ncheck_timeout = \"0s\"\n", "health.check_timeout"},
      {"[reboot]\nwindow_length = \"0s\"\n", "reboot.window_length"},
      {"[update]\ncheck_interval = \"1h30\"\n", "update.check_interval"}};
  for (const auto& [text, key] : cases) {
    INFO(text);
    auto st = cfg.merge_text(text, "z.toml");
    REQUIRE_FALSE(st);
    CHECK_THAT(st.error().message, Catch::Contains("z.toml:2"));
    CHECK_THAT(st.error().message, Catch::Contains(key));
  }
  // Where zero means "none", it stays allowed.
  REQUIRE(cfg.merge_text("[update]\ncheck_jitter = \"0s\"\n[report]\nheartbeat_interval = 0\n", "ok.toml"));
}

TEST_CASE("every duration key and every size key has an upper bound") {
  for (const auto& spec : config_schema()) {
    INFO(spec.key);
    if (spec.type == ConfigType::duration) {
      CHECK(spec.min >= 0);
      CHECK(spec.max <= int64_t{366} * 24 * 3600 * 1000);
    }
    if (spec.type == ConfigType::integer) CHECK(spec.max < INT64_MAX);
  }
}

TEST_CASE("an unknown key is an error naming file, line and key") {
  ConfigDirs d;
  d.write(1, "10-a.toml", "[update]\nchannel = \"x\"\nchanel = \"typo\"\n");
  auto cfg = Config::load(d.dirs);
  REQUIRE_FALSE(cfg);
  CHECK(cfg.error().code == "config.unknown-key");
  CHECK_THAT(cfg.error().message, Catch::Contains(path_join(d.dirs[1], "10-a.toml") + ":3"));
  CHECK_THAT(cfg.error().message, Catch::Contains("update.chanel"));
}

TEST_CASE("an unknown section is an error naming file, line and key") {
  ConfigDirs d;
  d.write(1, "10-a.toml", "\n[updates]\nchannel = \"x\"\n");
  auto cfg = Config::load(d.dirs);
  REQUIRE_FALSE(cfg);
  CHECK(cfg.error().code == "config.unknown-key");
  CHECK_THAT(cfg.error().message, Catch::Contains("10-a.toml:3"));
  CHECK_THAT(cfg.error().message, Catch::Contains("updates.channel"));
}

TEST_CASE("a value of the wrong type is an error naming file, line, key and the expected type") {
  ConfigDirs d;
  d.write(1, "10-a.toml", "[boot]\ntries = \"three\"\n");
  auto cfg = Config::load(d.dirs);
  REQUIRE_FALSE(cfg);
  CHECK(cfg.error().code == "config.wrong-type");
  CHECK_THAT(cfg.error().message, Catch::Contains("10-a.toml:2"));
  CHECK_THAT(cfg.error().message, Catch::Contains("boot.tries"));
  CHECK_THAT(cfg.error().message, Catch::Contains("an integer"));
}

TEST_CASE("out-of-range integers, unknown choices and bad durations are refused") {
  Config cfg;
  auto tries = cfg.merge_text("[boot]\ntries = 0\n", "a.toml");
  REQUIRE_FALSE(tries);
  CHECK(tries.error().code == "config.bad-value");
  auto strategy = cfg.merge_text("[reboot]\nstrategy = \"sometimes\"\n", "b.toml");
  REQUIRE_FALSE(strategy);
  CHECK_THAT(strategy.error().message, Catch::Contains("immediate, periodic, fleet_lock, manual"));
  auto interval = cfg.merge_text("[update]\ncheck_interval = \"soon\"\n", "c.toml");
  REQUIRE_FALSE(interval);
  CHECK_THAT(interval.error().message, Catch::Contains("c.toml:2"));
  CHECK(cfg.get_int("boot.tries") == 3);  // nothing of a refused file was applied
}

TEST_CASE("a TOML syntax error names the file and line") {
  Config cfg;
  auto st = cfg.merge_text("[update]\nchannel = \"unterminated\n", "broken.toml");
  REQUIRE_FALSE(st);
  CHECK(st.error().code == "config.syntax");
  CHECK_THAT(st.error().message, Catch::StartsWith("broken.toml:2"));
}

TEST_CASE("durations accept integer seconds and lists accept arrays of strings") {
  Config cfg;
  REQUIRE(cfg.merge_text("[update]\ncheck_interval = 90\n[reboot]\nwindow_days = [\"Sat\", \"Sun\"]\n", "x.toml"));
  CHECK(cfg.get_duration("update.check_interval") == 90s);
  CHECK(cfg.get_list("reboot.window_days") == std::vector<std::string>{"Sat", "Sun"});
  CHECK(Config::format_value(cfg.entries().at("update.check_interval").value) == "\"1m30s\"");
}

TEST_CASE("every schema default converts and every key has a section and documentation") {
  Config cfg;  // asserts inside if a default fails to convert
  for (const auto& spec : config_schema()) {
    INFO(spec.key);
    CHECK(spec.key.find('.') != std::string::npos);
    CHECK_FALSE(spec.doc.empty());
    CHECK(cfg.entries().count(spec.key) == 1);
  }
}
