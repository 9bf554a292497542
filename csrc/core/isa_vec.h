// GCC vector types and unaligned loads / stores for the per-ISA units (include after
// core/isa_unit.h; use with `using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;`). They live in the
// unit's own namespace, like everything a per-ISA unit compiles.
#pragma once
#include <cstdint>

#ifndef NIMBLEOPS_ISA_NS
#error "include core/isa_unit.h first"
#endif

namespace nimbleops {
namespace NIMBLEOPS_ISA_NS {
namespace vec {

// L values of T as one vector: element-wise arithmetic, lowered to the level's registers
template <class T, int L>
struct Vec {
  typedef T type __attribute__((vector_size(L * sizeof(T))));
};

template <class T>
struct SameSizeInt;
template <>
struct SameSizeInt<float> {
  typedef int32_t type;
};
template <>
struct SameSizeInt<double> {
  typedef int64_t type;
};

// the lane mask of Vec<T, L> (comparisons give -1 / 0 per lane; `mask ? a : b` selects)
template <class T, int L>
struct Mask {
  typedef typename SameSizeInt<T>::type I;
  typedef I type __attribute__((vector_size(L * sizeof(I))));
};

// The level's vector registers: how many, and how many values of T one holds. Register-blocked
// kernels size their blocks by these (a kernel sized for AVX-512's 32 zmm spills on every
// multiply-add at AVX2, where a 16-lane float vector is two of the 16 ymm).
#if defined(__AVX512F__)
constexpr int kRegisters = 32, kRegisterBytes = 64;
#elif defined(__AVX__)
constexpr int kRegisters = 16, kRegisterBytes = 32;
#else
constexpr int kRegisters = 16, kRegisterBytes = 16;
#endif
// values of T in one register, or Max where a kernel's block is narrower than that
template <class T, int Max = kRegisterBytes>
constexpr int register_lanes() {
  return kRegisterBytes / int(sizeof(T)) < Max ? kRegisterBytes / int(sizeof(T)) : Max;
}

template <class V, class T>
inline V load(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}

template <class V, class T>
inline void store(T* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof(V));
}

}  // namespace vec
}  // namespace NIMBLEOPS_ISA_NS
}  // namespace nimbleops
