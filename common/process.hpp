// Child processes are spawned from an argv vector, never from a shell string.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast {

struct SpawnOptions {
  std::optional<std::string> stdin_data = {};     // written to the child's stdin, then closed
  bool capture_stdout = true;                // otherwise inherited
  bool capture_stderr = true;                // otherwise inherited
  std::chrono::milliseconds timeout{0};      // 0: none; on expiry SIGKILL and "process.timeout"
  std::vector<std::string> extra_env = {};      // "NAME=value" added to the inherited environment
  std::optional<std::string> cwd = {};
  size_t max_output = 64 << 20;              // per captured stream
};

struct ProcessResult {
  int exit_code = -1;   // valid when !signaled
  int signal = 0;       // terminating signal, 0 when exited
  std::string out;
  std::string err;
  bool success() const { return signal == 0 && exit_code == 0; }
};

// Runs argv[0] (looked up in PATH) and waits. Fails only when it could not run or timed out;
// a non-zero exit is reported in ProcessResult.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const SpawnOptions& opts = {});

// run_process, then a non-zero exit becomes an error "process.failed" quoting its stderr.
Result<ProcessResult> run_checked(const std::vector<std::string>& argv, const SpawnOptions& opts = {});

}  // namespace ballast
