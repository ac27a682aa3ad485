// The `ballast` command line: every verb registers itself from its own file with
// BALLAST_REGISTER_VERB, so modules add verbs without touching main.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/config.hpp"
#include "common/host_lock.hpp"
#include "common/result.hpp"

namespace ballast::cli {

// Paths of the host are options so tests run on loop images and directories.
struct GlobalOptions {
  std::string sysroot = "/";
  std::string esp_path = "/efi";
  std::string efivars_path = "/sys/firmware/efi/efivars";
  std::string state_dir = "/var/lib/ballast";
  std::string cmdline_path = "/proc/cmdline";  // a sandbox host's simulated boots write their own
  std::string tpm_path = "/sys/class/tpm/tpm0";  // boot::kDefaultTpmPath; a sandbox's directory in tests
  std::vector<std::string> config_dirs;  // empty: default_config_dirs()
  bool json = false;
  bool verbose = false;
  bool wait = false;  // a writing verb waits for the host lock instead of failing at once

  // Takes the host lock (<state_dir>/lock) for a verb that writes the host, per --wait.
  Result<HostLock> lock_host(const std::string& verb) const;

  // Loads the configuration from config_dirs (or the defaults).
  Result<Config> load_config() const;
};

// What a verb does once its options are parsed; returns the process exit status.
using VerbAction = std::function<int()>;

struct VerbContext {
  CLI::App& app;              // the top-level app; add a subcommand to it
  GlobalOptions& global;
  VerbAction& action;         // set it from the subcommand's callback
};

using VerbSetup = void (*)(VerbContext&);

struct VerbRegistration {
  VerbRegistration(int order, VerbSetup setup);
};

std::vector<std::pair<int, VerbSetup>>& verb_registry();

// Prints "ballast: <error>" on stderr; returns exit status 1.
int report_error(const Error& e);

// Prints a JSON document (pretty, newline-terminated) on stdout.
void print_json(const nlohmann::json& j);

}  // namespace ballast::cli

#define BALLAST_CONCAT_INNER(a, b) a##b
#define BALLAST_CONCAT(a, b) BALLAST_CONCAT_INNER(a, b)
// `order` sorts verbs in --help; lower first.
#define BALLAST_REGISTER_VERB(order, setup) \
  static ::ballast::cli::VerbRegistration BALLAST_CONCAT(ballast_verb_, __LINE__)(order, setup)
