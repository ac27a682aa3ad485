// A ring buffer whose memory is mapped twice, back to back: any span of up to capacity() bytes,
// starting anywhere in the ring, is one contiguous range of addresses. A producer can then write
// in place and a consumer read in place across the wrap, and the bytes just behind the producer
// (a decompressor's history) are one view — nothing is ever copied to straighten the ring.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.hpp"

namespace ballast {

class MirroredRing {
 public:
  // At least `min_capacity` bytes (rounded up to whole pages). Errors: "ring.memory".
  static Result<MirroredRing> create(size_t min_capacity);

  MirroredRing(MirroredRing&& other) noexcept;
  MirroredRing& operator=(MirroredRing&& other) noexcept;
  MirroredRing(const MirroredRing&) = delete;
  MirroredRing& operator=(const MirroredRing&) = delete;
  ~MirroredRing();

  size_t capacity() const { return capacity_; }
  // The address of stream position `pos`; the capacity() bytes from there are contiguous.
  char* at(uint64_t pos) const { return base_ + pos % capacity_; }

 private:
  MirroredRing(char* base, size_t capacity) : base_(base), capacity_(capacity) {}
  void release();

  char* base_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace ballast
