#include "boot/grubenv.hpp"

#include <cerrno>

#include "common/file.hpp"

namespace ballast::boot {
namespace {
constexpr std::string_view kHeader = "# GRUB Environment Block\n";
}

Result<GrubEnv> parse_grubenv(std::string_view block) {
  if (block.size() != kGrubenvSize)
    return fail("boot.bad-grubenv", "grubenv is " + std::to_string(block.size()) + " bytes, not 1024");
  if (block.substr(0, kHeader.size()) != kHeader) return fail("boot.bad-grubenv", "grubenv lacks its header");
  GrubEnv env;
  size_t i = kHeader.size();
  while (i < block.size()) {
    if (block[i] == '#') {  // padding or a comment: skip the line
      auto nl = block.find('\n', i);
      if (nl == std::string_view::npos) break;
      i = nl + 1;
      continue;
    }
    std::string name, value;
    bool in_value = false, ended = false;
    for (; i < block.size(); ++i) {
      char c = block[i];
      if (c == '\\' && i + 1 < block.size()) {
        (in_value ? value : name) += block[++i];
        continue;
      }
      if (c == '\n') {
        ended = true;
        ++i;
        break;
      }
      if (c == '=' && !in_value) {
        in_value = true;
        continue;
      }
      if (c == '\0') return fail("boot.bad-grubenv", "grubenv holds a NUL byte");
      (in_value ? value : name) += c;
    }
    if (!ended) return fail("boot.bad-grubenv", "grubenv ends inside a variable");
    if (!in_value || name.empty()) return fail("boot.bad-grubenv", "grubenv line without name=value");
    env[name] = value;
  }
  return env;
}

Result<std::string> format_grubenv(const GrubEnv& env) {
  std::string out(kHeader);
  auto escape = [](const std::string& s) {
    std::string r;
    for (char c : s) {
      if (c == '\\' || c == '\n') r += '\\';
      r += c;
    }
    return r;
  };
  for (const auto& [name, value] : env) {
    if (name.empty() || name.find_first_of(std::string("=\n\\#\0", 5)) != std::string::npos)
      return fail("boot.bad-grubenv", "invalid grubenv variable name: " + name);
    if (value.find('\0') != std::string::npos) return fail("boot.bad-grubenv", "grubenv value holds a NUL byte");
    out += name + "=" + escape(value) + "\n";
  }
  if (out.size() > kGrubenvSize)
    return fail("boot.grubenv-full", "grubenv variables need " + std::to_string(out.size()) + " of 1024 bytes");
  out.append(kGrubenvSize - out.size(), '#');
  return out;
}

Result<GrubEnv> read_grubenv(const std::string& path) {
  auto text = read_file(path, 64 << 10);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return GrubEnv{};
    return tl::unexpected(text.error());
  }
  return with_context(parse_grubenv(*text), "reading " + path);
}

Status write_grubenv(const std::string& path, const GrubEnv& env) {
  auto block = BALLAST_TRY(format_grubenv(env));
  return with_context(write_file_atomic(path, block), "writing " + path);
}

}  // namespace ballast::boot
