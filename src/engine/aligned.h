// Internal to the vector engine: std::vector storage aligned to a cache
// line, for the query copies the distance kernels read beside the stored
// vectors (which live 64-byte aligned in the indexes' arrays).
//
// Why it matters: a std::vector<float> from malloc is 16-byte aligned, so a
// query copy usually starts mid-line and every 64-byte load of an AVX-512
// kernel straddles two cache lines. Whether it did depended on the heap's
// state, which differs between processes and threads: the same search ran
// ~10% slower in the FUSE daemon than in a test program on the same index
// (bench/fs-vectors/README.md, session 10).
#ifndef VEXFS_ENGINE_ALIGNED_H_
#define VEXFS_ENGINE_ALIGNED_H_

#include <cstddef>
#include <new>
#include <vector>

namespace vexfs::engine {

template <class T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};

  CacheAlignedAllocator() = default;
  template <class U>
  constexpr CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}

  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t n) noexcept { ::operator delete(p, n * sizeof(T), kAlign); }

  template <class U>
  bool operator==(const CacheAlignedAllocator<U>&) const noexcept {
    return true;
  }
};

// A float vector whose data() is 64-byte aligned.
using AlignedFloats = std::vector<float, CacheAlignedAllocator<float>>;

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_ALIGNED_H_
