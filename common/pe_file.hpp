// The section table of a PE/COFF image (an EFI binary such as a unified kernel image), read from
// its bytes: the boot simulator reads a UKI's .cmdline, the publisher measures its sections and the
// image builder places new sections after the stub's last one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace ballast::pe {

struct Section {
  std::string name;            // up to 8 bytes, NULs stripped
  uint32_t virtual_address = 0;
  uint32_t virtual_size = 0;   // the size of the contents, as loaded
  uint32_t raw_offset = 0;     // where the contents are in the file
  uint32_t raw_size = 0;       // padded to the file alignment
};

struct Image {
  uint32_t section_alignment = 0;
  // The certificate table (data directory 4, where sbsign puts the Authenticode signature): a
  // file offset and a size, 0 when the image has none.
  uint32_t certificate_table_offset = 0;
  uint32_t certificate_table_size = 0;
  std::vector<Section> sections;  // in table order

  const Section* find(std::string_view name) const;
  // The first address past every section, rounded up to the section alignment: where a section
  // appended to this image may start.
  uint64_t end_of_sections() const;
};

// "pe.malformed" when the bytes are not a PE image or a section lies outside them.
Result<Image> read_image(std::string_view bytes);

// Sets the COFF header's time stamp (tools write the current time there) and recomputes the
// optional header's checksum, so an image assembled twice from the same inputs has the same bytes.
Status set_timestamp(std::string& bytes, uint32_t seconds);

// The image carries an Authenticode signature: its certificate table (data directory 4) is not
// empty and holds a PKCS#7 signed-data WIN_CERTIFICATE. Whether the signature verifies against a
// key is the firmware's business (db); this tells a signed loader from an unsigned one.
Result<bool> has_authenticode_signature(std::string_view bytes);
// The same for the image in a file, reading only its headers and the certificate's.
Result<bool> has_authenticode_signature_of_file(const std::string& path);

// The headers of the image in a file, read without reading the rest.
Result<Image> read_image_of_file(const std::string& path);

// One section of the image in a file, read without reading the rest: the headers, then the section.
Result<std::optional<std::string>> read_section_of_file(const std::string& path, std::string_view name);

// A section's contents as the loader sees them: virtual_size bytes, less when the file holds fewer.
std::string_view contents(std::string_view bytes, const Section& s);

// read_image, then the named section's contents; nullopt when the image has no such section.
Result<std::optional<std::string>> section_contents(std::string_view bytes, std::string_view name);

}  // namespace ballast::pe
