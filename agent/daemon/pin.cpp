#include "agent/daemon/pin.hpp"

#include <cerrno>
#include <unistd.h>

#include "common/file.hpp"

namespace ballast::agent {
namespace {
std::string pin_path(const std::string& state_dir) { return path_join(state_dir, "pin"); }
}  // namespace

Result<std::optional<Version>> read_pin(const std::string& state_dir) {
  auto text = read_file(pin_path(state_dir), 4096);
  if (!text) {
    if (text.error().code == "io.not-found") return std::optional<Version>();
    return tl::unexpected(text.error());
  }
  std::string v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  auto version = Version::parse(v);
  if (!version) return fail("pin.corrupt", pin_path(state_dir) + " does not hold a version: " + version.error().message);
  return std::optional<Version>(*version);
}

Status write_pin(const std::string& state_dir, const Version& version) {
  BALLAST_CHECK(make_dirs(state_dir));
  return write_file_atomic(pin_path(state_dir), version.str() + "\n", 0644);
}

Status remove_pin(const std::string& state_dir) {
  if (::unlink(pin_path(state_dir).c_str()) != 0 && errno != ENOENT)
    return fail_errno("pin.remove", errno, "cannot remove " + pin_path(state_dir));
  return ok();
}

}  // namespace ballast::agent
