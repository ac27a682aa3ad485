#include "boot/efivars.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>

#include "common/file.hpp"

namespace ballast::boot {
namespace {

constexpr uint32_t kAttrNonVolatileBootRuntime = 0x7;
constexpr long kEfivarfsMagic = 0xde5e81e4;

// efivarfs sets the immutable flag on variables so that `rm -rf` cannot brick firmware; writing
// or deleting needs it cleared. Other file systems answer ENOTTY (or similar): nothing to do.
Status clear_immutable(int fd, const std::string& what) {
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
    if (errno == ENOTTY || errno == ENOTSUP || errno == EINVAL || errno == ENOSYS) return ok();
    return fail_errno("boot.efivar", errno, "cannot read the flags of " + what);
  }
  if (!(flags & FS_IMMUTABLE_FL)) return ok();
  flags &= ~FS_IMMUTABLE_FL;
  if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
    return fail_errno("boot.efivar", errno, "cannot clear the immutable flag of " + what);
  return ok();
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Efivarfs final : public EfiVariables {
 public:
  explicit Efivarfs(std::string dir) : dir_(std::move(dir)) {}

  Result<std::optional<std::string>> read_string(const std::string& name) override {
    auto raw = BALLAST_TRY(read_value(name));
    if (!raw) return std::optional<std::string>();
    auto s = BALLAST_TRY(with_context(decode_utf16le(*raw), "reading EFI variable " + name));
    return std::optional<std::string>(std::move(s));
  }

  Result<std::vector<std::string>> read_string_list(const std::string& name) override {
    auto raw = BALLAST_TRY(read_value(name));
    std::vector<std::string> out;
    if (!raw) return out;
    std::string_view rest = *raw;
    if (rest.size() % 2) return fail("boot.efivar", "EFI variable " + name + " has an odd length");
    while (!rest.empty()) {
      size_t end = 0;
      while (end + 1 < rest.size() && !(rest[end] == 0 && rest[end + 1] == 0)) end += 2;
      out.push_back(BALLAST_TRY(decode_utf16le(rest.substr(0, end))));
      rest.remove_prefix(std::min(rest.size(), end + 2));
    }
    return out;
  }

  Result<std::optional<uint64_t>> read_u64(const std::string& name) override {
    auto raw = BALLAST_TRY(read_value(name));
    if (!raw) return std::optional<uint64_t>();
    if (raw->size() != 8) return fail("boot.efivar", "EFI variable " + name + " is not 8 bytes long");
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>((*raw)[i]);
    return std::optional<uint64_t>(v);
  }

  Result<std::optional<std::string>> read_bytes(const std::string& name, const std::string& guid) override {
    return read_value(name, guid);
  }

  Status write_string(const std::string& name, const std::string& value) override {
    std::string data;
    for (int i = 0; i < 4; ++i) data += static_cast<char>((kAttrNonVolatileBootRuntime >> (8 * i)) & 0xFF);
    data += encode_utf16le(value);
    data.append(2, '\0');
    std::string path = path_join(dir_, efivar_file_name(name));
    BALLAST_CHECK(check_dir());
    if (!on_efivarfs_) return with_context(write_file_atomic(path, data, 0644), "writing EFI variable " + name);
    // efivarfs takes attributes and value in a single write(); it has no temp files or rename.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) return fail_errno("boot.efivar", errno, "cannot open EFI variable " + path);
    UniqueFd guard(fd);
    BALLAST_CHECK(clear_immutable(fd, path));
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n != static_cast<ssize_t>(data.size()))
      return fail_errno("boot.efivar", n < 0 ? errno : EIO, "cannot write EFI variable " + path);
    return ok();
  }

  Status remove(const std::string& name) override {
    std::string path = path_join(dir_, efivar_file_name(name));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      if (errno == ENOENT) return ok();
      return fail_errno("boot.efivar", errno, "cannot open EFI variable " + path);
    }
    UniqueFd guard(fd);
    BALLAST_CHECK(clear_immutable(fd, path));
    if (::unlink(path.c_str()) < 0 && errno != ENOENT)
      return fail_errno("boot.efivar", errno, "cannot delete EFI variable " + path);
    return ok();
  }

 private:
  Status check_dir() {
    struct statfs sfs {};
    if (::statfs(dir_.c_str(), &sfs) < 0)
      return fail_errno("boot.efivar", errno, "EFI variables directory " + dir_ + " is not usable");
    on_efivarfs_ = static_cast<long>(sfs.f_type) == kEfivarfsMagic;
    return ok();
  }

  // The value without the attribute word; nullopt when the variable does not exist.
  Result<std::optional<std::string>> read_value(const std::string& name, const std::string& guid = kLoaderVendorGuid) {
    std::string path = path_join(dir_, efivar_file_name(name, guid));
    auto raw = read_file(path, 1 << 20);
    if (!raw) {
      if (raw.error().sys_errno == ENOENT) return std::optional<std::string>();
      return tl::unexpected(raw.error());
    }
    if (raw->size() < 4) return fail("boot.efivar", "EFI variable " + name + " is shorter than its attribute word");
    return std::optional<std::string>(raw->substr(4));
  }

  std::string dir_;
  bool on_efivarfs_ = false;
};

}  // namespace

std::string efivar_file_name(const std::string& name, const std::string& guid) { return name + "-" + guid; }

Result<bool> secure_boot_enabled(EfiVariables& efi) {
  auto value = BALLAST_TRY(efi.read_bytes("SecureBoot", kGlobalVariableGuid));
  if (!value) return false;
  if (value->size() != 1) return fail("boot.efivar", "EFI variable SecureBoot is not one byte long");
  return (*value)[0] == 1;
}

std::string encode_utf16le(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int extra;
    if (c < 0x80) cp = c, extra = 0;
    else if ((c & 0xE0) == 0xC0) cp = c & 0x1F, extra = 1;
    else if ((c & 0xF0) == 0xE0) cp = c & 0x0F, extra = 2;
    else if ((c & 0xF8) == 0xF0) cp = c & 0x07, extra = 3;
    else cp = 0xFFFD, extra = 0;
    ++i;
    for (int k = 0; k < extra; ++k, ++i) {
      if (i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) { cp = 0xFFFD; break; }
      cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
    }
    auto unit = [&out](uint32_t u) {
      out += static_cast<char>(u & 0xFF);
      out += static_cast<char>((u >> 8) & 0xFF);
    };
    if (cp >= 0x10000) {
      cp -= 0x10000;
      unit(0xD800 | (cp >> 10));
      unit(0xDC00 | (cp & 0x3FF));
    } else {
      unit(cp);
    }
  }
  return out;
}

Result<std::string> decode_utf16le(std::string_view b) {
  if (b.size() % 2) return fail("boot.efivar", "UTF-16 string of odd length");
  std::string out;
  for (size_t i = 0; i + 1 < b.size(); i += 2) {
    uint32_t u = static_cast<unsigned char>(b[i]) | (static_cast<unsigned char>(b[i + 1]) << 8);
    if (u == 0) break;
    if (u >= 0xD800 && u < 0xDC00 && i + 3 < b.size()) {
      uint32_t lo = static_cast<unsigned char>(b[i + 2]) | (static_cast<unsigned char>(b[i + 3]) << 8);
      if (lo >= 0xDC00 && lo < 0xE000) {
        append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        i += 2;
        continue;
      }
    }
    if (u >= 0xD800 && u < 0xE000) u = 0xFFFD;
    append_utf8(out, u);
  }
  return out;
}

std::unique_ptr<EfiVariables> make_efivarfs(const std::string& path) { return std::make_unique<Efivarfs>(path); }

}  // namespace ballast::boot
