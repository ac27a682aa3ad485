#include "common/mirrored_ring.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "common/fd.hpp"

namespace ballast {

Result<MirroredRing> MirroredRing::create(size_t min_capacity) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (min_capacity == 0) min_capacity = 1;
  if (min_capacity > (SIZE_MAX / 2) - page) return fail("ring.memory", "ring buffer too large");
  size_t cap = (min_capacity + page - 1) / page * page;
  UniqueFd fd(::memfd_create("ballast-ring", MFD_CLOEXEC));
  if (!fd) return fail_errno("ring.memory", errno, "cannot create the ring buffer's memory");
  if (::ftruncate(fd.get(), static_cast<off_t>(cap)) != 0)
    return fail_errno("ring.memory", errno, "cannot size the ring buffer");
  // Reserve both halves at once so nothing else can be mapped between them.
  void* area = ::mmap(nullptr, 2 * cap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return fail_errno("ring.memory", errno, "cannot reserve the ring buffer");
  char* base = static_cast<char*>(area);
  for (int half = 0; half < 2; ++half) {
    void* m = ::mmap(base + half * cap, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd.get(), 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::munmap(base, 2 * cap);
      return fail_errno("ring.memory", e, "cannot map the ring buffer");
    }
  }
  return MirroredRing(base, cap);  // the mappings keep the memory; the descriptor can go
}

MirroredRing::MirroredRing(MirroredRing&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}

MirroredRing& MirroredRing::operator=(MirroredRing&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

MirroredRing::~MirroredRing() { release(); }

void MirroredRing::release() {
  if (base_) ::munmap(base_, 2 * capacity_);
  base_ = nullptr;
  capacity_ = 0;
}

}  // namespace ballast
