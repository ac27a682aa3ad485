#include "common/byte_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fd.hpp"

namespace ballast {

Result<size_t> FdByteSource::read(void* buf, size_t len) {
  for (;;) {
    ssize_t n = ::read(fd_, buf, len);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return fail_errno("io.read", errno, "cannot read input stream");
  }
}

namespace {
class FileByteSource final : public ByteSource {
 public:
  explicit FileByteSource(UniqueFd fd) : fd_(std::move(fd)), inner_(fd_.get()) {}
  Result<size_t> read(void* buf, size_t len) override { return inner_.read(buf, len); }

 private:
  UniqueFd fd_;
  FdByteSource inner_;
};
}  // namespace

Result<std::unique_ptr<ByteSource>> open_file_source(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno(errno == ENOENT ? "io.not-found" : "io.open", errno, "cannot open " + path);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<ByteSource>(new FileByteSource(std::move(fd)));
}

Result<size_t> MemoryByteSource::read(void* buf, size_t len) {
  size_t n = std::min(len, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, n);
  pos_ += n;
  return n;
}

}  // namespace ballast
