#include "agent/health.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "common/file.hpp"
#include "common/process.hpp"

namespace ballast::agent {

namespace {

// The last `max_lines` lines: enough to say why, never a whole log.
std::string tail_lines(const std::string& text, size_t max_lines = 20) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t start = end, lines = 0;
  while (start > 0 && lines < max_lines) {
    --start;
    if (text[start] == '\n' && ++lines == max_lines) {
      ++start;
      break;
    }
  }
  return text.substr(start, end - start);
}

HealthCheckResult run_one(const std::string& name, const std::vector<std::string>& argv, bool required,
                          std::chrono::milliseconds timeout) {
  HealthCheckResult r;
  r.name = name;
  r.path = argv.front();
  r.required = required;
  auto start = std::chrono::steady_clock::now();
  auto ran = run_process(argv, SpawnOptions{.timeout = timeout});
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  if (!ran) {
    r.timed_out = ran.error().code == "process.timeout";
    r.output = ran.error().describe();
    return r;
  }
  r.exit_code = ran->signal ? 128 + ran->signal : ran->exit_code;
  r.passed = ran->success();
  r.output = tail_lines(ran->out + ran->err);
  return r;
}

}  // namespace

std::vector<std::string> HealthReport::failures() const {
  std::vector<std::string> out;
  for (const auto& c : checks)
    if (!c.passed) out.push_back(c.code.empty() ? c.name : c.name + " (" + c.code + ")");
  return out;
}

Result<HealthReport> run_health_checks(const HealthOptions& opts) {
  // name ("required/10-x") → path, later directories replacing earlier ones; /dev/null masks.
  std::map<std::string, std::string> checks;
  for (const auto& dir : opts.dirs) {
    for (const char* kind : {"required", "wanted"}) {
      std::string sub = path_join(dir, kind);
      auto names = list_dir(sub);
      if (!names) {
        if (names.error().code == "io.not-found") continue;
        return tl::unexpected(names.error());
      }
      for (const auto& n : *names) {
        if (n[0] == '.') continue;
        std::string path = path_join(sub, n);
        std::string key = std::string(kind) + "/" + n;
        char target[16];
        ssize_t len = ::readlink(path.c_str(), target, sizeof(target));
        if (len == 9 && std::string(target, 9) == "/dev/null") {
          checks.erase(key);
          continue;
        }
        checks[key] = path;
      }
    }
  }
  HealthReport report;
  for (const auto& [name, path] : checks) {
    bool required = name.rfind("required/", 0) == 0;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
      HealthCheckResult r;
      r.name = name;
      r.path = path;
      r.required = required;
      r.output = "not an executable file";
      report.checks.push_back(r);
      continue;
    }
    report.checks.push_back(run_one(name, {path}, required, opts.timeout));
  }
  if (opts.check_failed_units) {
    // Passes only when systemd answers and lists no failed unit: not knowing is not healthy.
    auto r = run_one("failed-units", {"systemctl", "--no-pager", "--plain", "--no-legend", "list-units", "--state=failed"},
                     true, opts.timeout);
    if (r.passed && r.output.find_first_not_of(" \n") != std::string::npos) r.passed = false;
    report.checks.push_back(r);
  }
  for (const auto& c : report.checks)
    if (c.required && !c.passed) report.healthy = false;
  return report;
}

nlohmann::json health_to_json(const HealthReport& r) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : r.checks) {
    checks.push_back({{"name", c.name}, {"path", c.path}, {"required", c.required}, {"passed", c.passed},
                      {"timedOut", c.timed_out}, {"exitCode", c.exit_code}, {"output", c.output},
                      {"durationMs", c.duration.count()}});
    if (!c.code.empty()) checks.back()["code"] = c.code;
  }
  return {{"healthy", r.healthy}, {"failures", r.failures()}, {"checks", checks}};
}

}  // namespace ballast::agent
