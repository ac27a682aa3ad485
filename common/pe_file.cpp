#include "common/pe_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/fd.hpp"

namespace ballast::pe {

namespace {

uint32_t le(std::string_view b, size_t at, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

void put_le32(std::string& b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

constexpr size_t kCoffSize = 20;
constexpr size_t kSectionAlignmentAt = 32;  // in the optional header; the same in PE32 and PE32+
constexpr size_t kCheckSumAt = 64;

// The offset of the COFF header, after checking the headers fit in the bytes.
Result<size_t> coff_header(std::string_view b) {
  auto malformed = [](const std::string& why) { return fail("pe.malformed", "not a PE image: " + why); };
  if (b.size() < 0x40 || b.substr(0, 2) != "MZ") return malformed("no MZ header");
  const size_t pe = le(b, 0x3c, 4);
  if (pe + 4 + kCoffSize > b.size() || b.substr(pe, 4) != std::string_view("PE\0\0", 4))
    return malformed("no PE signature");
  const size_t coff = pe + 4;
  const size_t optional_size = le(b, coff + 16, 2);
  if (optional_size < kCheckSumAt + 4 || coff + kCoffSize + optional_size > b.size())
    return malformed("truncated optional header");
  return coff;
}

}  // namespace

const Section* Image::find(std::string_view name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

uint64_t Image::end_of_sections() const {
  uint64_t end = 0;
  for (const auto& s : sections)
    end = std::max<uint64_t>(end, uint64_t{s.virtual_address} + std::max(s.virtual_size, s.raw_size));
  const uint64_t align = section_alignment ? section_alignment : 1;
  return (end + align - 1) / align * align;
}

namespace {

// The headers in `b`, sections checked against the size of the whole file.
Result<Image> read_headers(std::string_view b, uint64_t file_size) {
  auto malformed = [](const std::string& why) { return fail("pe.malformed", "not a PE image: " + why); };
  const size_t coff = BALLAST_TRY(coff_header(b));
  const size_t count = le(b, coff + 2, 2);
  const size_t optional_size = le(b, coff + 16, 2);
  const size_t optional = coff + kCoffSize;
  Image img;
  img.section_alignment = le(b, optional + kSectionAlignmentAt, 4);
  // The data directories follow the fixed fields, which PE32+ (magic 0x20b) makes 16 bytes longer.
  const size_t directories = optional + (le(b, optional, 2) == 0x20b ? 112 : 96);
  constexpr size_t kSecurityDirectory = 4;
  if (directories >= 4 && directories - 4 + 4 <= optional + optional_size &&
      le(b, directories - 4, 4) > kSecurityDirectory &&
      directories + (kSecurityDirectory + 1) * 8 <= optional + optional_size) {
    img.certificate_table_offset = le(b, directories + kSecurityDirectory * 8, 4);
    img.certificate_table_size = le(b, directories + kSecurityDirectory * 8 + 4, 4);
    if (uint64_t{img.certificate_table_offset} + img.certificate_table_size > file_size)
      return malformed("the certificate table lies past the end of the file");
  }
  const size_t table = optional + optional_size;
  constexpr size_t kEntrySize = 40;
  if (table + count * kEntrySize > b.size()) return malformed("truncated section table");
  for (size_t i = 0; i < count; ++i) {
    const size_t at = table + i * kEntrySize;
    Section s;
    s.name = std::string(b.substr(at, 8).substr(0, b.substr(at, 8).find('\0')));
    s.virtual_size = le(b, at + 8, 4);
    s.virtual_address = le(b, at + 12, 4);
    s.raw_size = le(b, at + 16, 4);
    s.raw_offset = le(b, at + 20, 4);
    if (uint64_t{s.raw_offset} + s.raw_size > file_size)
      return malformed("section " + s.name + " lies past the end of the file");
    img.sections.push_back(std::move(s));
  }
  return img;
}

}  // namespace

Result<Image> read_image(std::string_view b) { return read_headers(b, b.size()); }

namespace {

constexpr size_t kWinCertificateHeader = 8;  // dwLength, wRevision, wCertificateType

// `header`: the first bytes of the certificate table, a WIN_CERTIFICATE.
bool is_pkcs_signed_data(std::string_view header) {
  constexpr uint32_t kPkcsSignedData = 0x0002;
  return header.size() >= kWinCertificateHeader && le(header, 6, 2) == kPkcsSignedData;
}

}  // namespace

Result<bool> has_authenticode_signature(std::string_view b) {
  auto img = BALLAST_TRY(read_image(b));
  if (img.certificate_table_size < kWinCertificateHeader) return false;
  return is_pkcs_signed_data(b.substr(img.certificate_table_offset, kWinCertificateHeader));
}

namespace {

// The image in `path` with its headers read, and the file kept open to read sections from.
struct OpenImage {
  UniqueFd fd;
  Image image;
};

Result<std::string> pread_all(int fd, const std::string& path, uint64_t offset, size_t size) {
  std::string buf(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, buf.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("pe.read", errno, "cannot read " + path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return buf;
}

Result<OpenImage> open_image(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("pe.read", errno, "cannot open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("pe.read", errno, "cannot read " + path);
  constexpr size_t kHeaders = 64 << 10;  // DOS stub, PE headers and section table fit with room to spare
  auto head = BALLAST_TRY(pread_all(fd.get(), path, 0, std::min<uint64_t>(kHeaders, static_cast<uint64_t>(st.st_size))));
  auto img = BALLAST_TRY(with_context(read_headers(head, static_cast<uint64_t>(st.st_size)), path));
  return OpenImage{std::move(fd), std::move(img)};
}

}  // namespace

Result<Image> read_image_of_file(const std::string& path) { return BALLAST_TRY(open_image(path)).image; }

Result<bool> has_authenticode_signature_of_file(const std::string& path) {
  auto opened = BALLAST_TRY(open_image(path));
  if (opened.image.certificate_table_size < kWinCertificateHeader) return false;
  return is_pkcs_signed_data(
      BALLAST_TRY(pread_all(opened.fd.get(), path, opened.image.certificate_table_offset, kWinCertificateHeader)));
}

Result<std::optional<std::string>> read_section_of_file(const std::string& path, std::string_view name) {
  auto opened = BALLAST_TRY(open_image(path));
  const Section* s = opened.image.find(name);
  if (!s) return std::optional<std::string>{};
  return std::optional<std::string>(
      BALLAST_TRY(pread_all(opened.fd.get(), path, s->raw_offset, std::min(s->virtual_size, s->raw_size))));
}

Status set_timestamp(std::string& b, uint32_t seconds) {
  const size_t coff = BALLAST_TRY(coff_header(b));
  put_le32(b, coff + 4, seconds);
  // The PE checksum: 16-bit words summed with end-around carry, its own field skipped, plus the length.
  const size_t checksum_at = coff + kCoffSize + kCheckSumAt;
  uint64_t sum = 0;
  for (size_t i = 0; i < b.size(); i += 2) {
    if (i == checksum_at || i == checksum_at + 2) continue;
    sum += le(b, i, i + 1 < b.size() ? 2 : 1);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  sum = (sum & 0xffff) + (sum >> 16);
  put_le32(b, checksum_at, static_cast<uint32_t>(sum + b.size()));
  return ok();
}

std::string_view contents(std::string_view bytes, const Section& s) {
  return bytes.substr(s.raw_offset, std::min(s.virtual_size, s.raw_size));
}

Result<std::optional<std::string>> section_contents(std::string_view bytes, std::string_view name) {
  auto img = BALLAST_TRY(read_image(bytes));
  const Section* s = img.find(name);
  if (!s) return std::optional<std::string>{};
  return std::optional<std::string>(contents(bytes, *s));
}

}  // namespace ballast::pe
