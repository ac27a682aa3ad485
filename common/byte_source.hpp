// A pull-based stream of bytes. The receiver consumes one; a file, stdin, or the repository's
// verified-and-decompressed chunk pipeline produces one, so fetch → verify → decompress → apply
// runs in one pass without a temporary copy of the whole stream.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace ballast {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `len` bytes into `buf`; returns 0 only at the end of the stream.
  virtual Result<size_t> read(void* buf, size_t len) = 0;
};

// Reads a file descriptor it does not own (e.g. stdin).
class FdByteSource final : public ByteSource {
 public:
  explicit FdByteSource(int fd) : fd_(fd) {}
  Result<size_t> read(void* buf, size_t len) override;

 private:
  int fd_;
};

// Opens and owns a file.
Result<std::unique_ptr<ByteSource>> open_file_source(const std::string& path);

// Serves bytes from memory (tests, small inputs).
class MemoryByteSource final : public ByteSource {
 public:
  explicit MemoryByteSource(std::string data) : data_(std::move(data)) {}
  Result<size_t> read(void* buf, size_t len) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

}  // namespace ballast
