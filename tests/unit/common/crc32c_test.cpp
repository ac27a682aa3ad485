#include <catch2/catch.hpp>
#include <string>

#include "common/crc32c.hpp"

using namespace ballast;

TEST_CASE("crc32c matches the RFC 3720 check value") {
  std::string s = "123456789";
  CHECK(crc32c(s.data(), s.size()) == 0xE3069283u);
  std::string zeros(32, '\0');
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720 B.4
}

TEST_CASE("crc32c over pieces equals crc32c over the whole, at every split and alignment") {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  uint32_t whole = crc32c_update(0, data.data(), data.size());
  for (size_t split : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    uint32_t c = crc32c_update(0, data.data(), split);
    c = crc32c_update(c, data.data() + split, data.size() - split);
    CHECK(c == whole);
  }
}
