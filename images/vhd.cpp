#include "images/vhd.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/process.hpp"

namespace ballast::images {

namespace {

constexpr uint64_t kSector = 512;
constexpr uint32_t kFixedDisk = 2;
constexpr size_t kChecksumOffset = 64;
constexpr int64_t kVhdEpoch = 946684800;  // 2000-01-01 00:00:00 UTC in Unix time

void put_be(VhdFooter& f, size_t offset, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) f[offset + i] = static_cast<uint8_t>(value >> (8 * (bytes - 1 - i)));
}

uint64_t get_be(const VhdFooter& f, size_t offset, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v = (v << 8) | f[offset + i];
  return v;
}

void put_chars(VhdFooter& f, size_t offset, const char* text, size_t bytes) { std::memcpy(f.data() + offset, text, bytes); }

}  // namespace

ChsGeometry vhd_geometry(uint64_t total_sectors) {
  total_sectors = std::min<uint64_t>(total_sectors, 65535ull * 16 * 255);
  uint64_t sectors_per_track, heads, cylinder_times_heads;
  if (total_sectors >= 65535ull * 16 * 63) {
    sectors_per_track = 255;
    heads = 16;
    cylinder_times_heads = total_sectors / sectors_per_track;
  } else {
    sectors_per_track = 17;
    cylinder_times_heads = total_sectors / sectors_per_track;
    heads = std::max<uint64_t>((cylinder_times_heads + 1023) / 1024, 4);
    if (cylinder_times_heads >= heads * 1024 || heads > 16) {
      sectors_per_track = 31;
      heads = 16;
      cylinder_times_heads = total_sectors / sectors_per_track;
    }
    if (cylinder_times_heads >= heads * 1024) {
      sectors_per_track = 63;
      heads = 16;
      cylinder_times_heads = total_sectors / sectors_per_track;
    }
  }
  return {static_cast<uint16_t>(cylinder_times_heads / heads), static_cast<uint8_t>(heads),
          static_cast<uint8_t>(sectors_per_track)};
}

uint32_t vhd_checksum(const VhdFooter& footer) {
  uint32_t sum = 0;
  for (size_t i = 0; i < footer.size(); ++i)
    if (i < kChecksumOffset || i >= kChecksumOffset + 4) sum += footer[i];
  return ~sum;
}

VhdFooter vhd_footer(uint64_t disk_size, const VhdUniqueId& unique_id, uint32_t timestamp) {
  VhdFooter f{};
  put_chars(f, 0, "conectix", 8);
  put_be(f, 8, 0x00000002, 4);           // features: the reserved bit, always set
  put_be(f, 12, 0x00010000, 4);          // format version 1.0
  put_be(f, 16, ~uint64_t{0}, 8);        // data offset: none for a fixed disk
  put_be(f, 24, timestamp, 4);
  // Readers take the footer's size rather than the (rounded-down) CHS product only for the
  // creators they know to write exact sizes (QEMU's vpc driver among them); Hyper-V's "win " is
  // the one Azure's own tools write.
  put_chars(f, 28, "win ", 4);
  put_be(f, 32, 0x000a0000, 4);          // creator version, as Hyper-V writes it
  put_chars(f, 36, "Wi2k", 4);           // creator host OS
  put_be(f, 40, disk_size, 8);           // original size
  put_be(f, 48, disk_size, 8);           // current size
  ChsGeometry g = vhd_geometry(disk_size / kSector);
  put_be(f, 56, g.cylinders, 2);
  f[58] = g.heads;
  f[59] = g.sectors_per_track;
  put_be(f, 60, kFixedDisk, 4);
  std::copy(unique_id.begin(), unique_id.end(), f.begin() + 68);
  put_be(f, kChecksumOffset, vhd_checksum(f), 4);
  return f;
}

VhdFooter new_vhd_footer(uint64_t disk_size) {
  VhdUniqueId id{};
  for (size_t got = 0; got < id.size();) {
    ssize_t n = ::getrandom(id.data() + got, id.size() - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  auto now = static_cast<int64_t>(std::time(nullptr));
  return vhd_footer(disk_size, id, static_cast<uint32_t>(std::max<int64_t>(now - kVhdEpoch, 0)));
}

std::optional<uint64_t> fixed_vhd_size(const VhdFooter& footer) {
  if (std::memcmp(footer.data(), "conectix", 8) != 0 || get_be(footer, 60, 4) != kFixedDisk ||
      get_be(footer, kChecksumOffset, 4) != vhd_checksum(footer))
    return std::nullopt;
  return get_be(footer, 48, 8);
}

uint64_t vhd_disk_size(uint64_t size) { return (size + kVhdAlignment - 1) / kVhdAlignment * kVhdAlignment; }

Result<std::optional<uint64_t>> read_fixed_vhd(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("vhd.open", errno, "cannot open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail_errno("vhd.open", errno, "cannot stat " + path);
  auto size = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || size < kVhdFooterSize) return std::optional<uint64_t>{};
  VhdFooter footer;
  if (::pread(fd.get(), footer.data(), footer.size(), static_cast<off_t>(size - kVhdFooterSize)) !=
      static_cast<ssize_t>(kVhdFooterSize))
    return fail_errno("vhd.read", errno, "cannot read the end of " + path);
  auto disk = fixed_vhd_size(footer);
  if (!disk || *disk != size - kVhdFooterSize) return std::optional<uint64_t>{};
  return disk;
}

Status append_vhd_footer(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("vhd.open", errno, "cannot open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail_errno("vhd.open", errno, "cannot stat " + path);
  if (!S_ISREG(st.st_mode)) return fail("vhd.not-a-file", path + " is not a regular file: a VHD is a disk image file");
  const auto old_size = static_cast<uint64_t>(st.st_size);
  const uint64_t disk = vhd_disk_size(old_size);
  auto footer = new_vhd_footer(disk);
  auto undo = [&](tl::unexpected<Error> e) -> Status {
    (void)::ftruncate(fd.get(), static_cast<off_t>(old_size));
    return e;
  };
  if (::ftruncate(fd.get(), static_cast<off_t>(disk)) != 0)
    return undo(fail_errno("vhd.write", errno, "cannot grow " + path + " to a whole MiB"));
  if (::pwrite(fd.get(), footer.data(), footer.size(), static_cast<off_t>(disk)) != static_cast<ssize_t>(footer.size()))
    return undo(fail_errno("vhd.write", errno, "cannot write the VHD footer of " + path));
  if (::fsync(fd.get()) != 0)
    return undo(fail_errno("vhd.write", errno, "cannot sync " + path));
  return ok();
}

Status convert_to_vhd(const std::string& raw, const std::string& output) {
  struct stat st;
  if (::stat(raw.c_str(), &st) != 0) return fail_errno("vhd.open", errno, "cannot read " + raw);
  if (!S_ISREG(st.st_mode)) return fail("vhd.not-a-file", raw + " is not a regular file");
  if (BALLAST_TRY(read_fixed_vhd(raw)))
    return fail("vhd.already-vhd", raw + " is already a fixed VHD");
  if (path_exists(output)) return fail("vhd.output-exists", output + " exists; remove it or choose another --output");
  const std::string temp = output + ".partial";
  (void)remove_if_exists(temp);
  // cp keeps holes (a fresh disk image is mostly holes) and clones extents where it can.
  auto copied = run_checked({"cp", "--sparse=always", "--reflink=auto", "--", raw, temp});
  if (!copied) {
    (void)remove_if_exists(temp);
    return with_context(Status(tl::unexpected(copied.error())), "copying " + raw);
  }
  auto appended = append_vhd_footer(temp);
  if (appended && ::rename(temp.c_str(), output.c_str()) != 0)
    appended = fail_errno("vhd.write", errno, "cannot rename " + temp + " to " + output);
  if (!appended) (void)remove_if_exists(temp);
  return appended;
}

}  // namespace ballast::images
