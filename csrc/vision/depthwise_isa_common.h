// Shared by the per-ISA units of the depthwise convolution (depthwise_per_isa.cpp,
// depthwise_nhwc_per_isa.cpp, depthwise_flat_per_isa.cpp), each compiled once per SIMD level
// into NIMBLEOPS_ISA_NS: the lane blocks of their data layouts, and the kernels one unit defines
// for another's table. Include after core/isa_unit.h and core/isa_vec.h.
#pragma once
#include <stdint.h>

#include "vision/depthwise_per_isa.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

// The data layouts keep blocks of kLanes (16) channels or outputs at every level; the
// register-blocked kernels below work on a block in pieces of at most reg_lanes<T> lanes and size
// their blocks to the level's register count (core/isa_vec.h), so that their sums stay in
// registers. A lane's sums are the same whatever the piece it is computed in.
template <class T>
constexpr int reg_lanes() {
  return register_lanes<T, kLanes>();
}

// kLanes values as one GCC vector (a zmm on AVX-512, two ymm on AVX2, four xmm on SSE2 for float;
// only where such a vector fits the level's registers, or is only loaded and stored)
template <class T>
struct Lanes {
  typedef typename Vec<T, kLanes>::type V;
  typedef typename Mask<T, kLanes>::type M;
};

// p as a value the compiler cannot see through: a pointer stepped by a runtime pitch stays one
// register (else it keeps one pointer or offset per step, out of general registers, and spills
// them: the planes of the transposes, the pixels of rows_block_nhwc, the taps of weight_piece_nhwc)
template <class P>
inline void opaque(P*& p) {
  asm("" : "+r"(p));
}

// The weight-gradient kernels keep K sums per tap row in registers: the rows of the group that
// starts at tap row kh0, as many as fit beside `others` other registers (at least one)
constexpr int group_tap_rows(int K, int others, int kh0) {
  const int fit = (kRegisters - others) / K < 1 ? 1 : (kRegisters - others) / K;
  return fit < K - kh0 ? fit : K - kh0;
}

}  // namespace

// channels_last kernels (depthwise_nhwc_per_isa.cpp); see DepthwiseKernels for their contracts
template <class T>
void forward_row_nhwc(const T* const* rows, int64_t KH, int64_t KW, int64_t iw0, int64_t n, int64_t s, int64_t d,
                      const T* w, const T* bias, int64_t C, int64_t c0, int64_t c1, T* out);
template <class T>
void forward_rows_nhwc(const T* const* rows, const T* zero, int64_t K, int64_t S, int64_t pad_w, int64_t W, int64_t n,
                       const T* w, const T* bias, int64_t C, int64_t c0, int64_t c1, T* out);
template <class T>
void forward_pixel_nhwc(const T* const* src, const int64_t* tap_index, int64_t taps, const T* w, const T* bias,
                        int64_t C, int64_t c0, int64_t c1, T* out);
template <class T>
void weight_nhwc(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH, int64_t OW, int64_t K, int64_t S,
                 T* part);
template <class T>
void input_row_nhwc(const T* g, int64_t OW, const T* w, int64_t K, int64_t S, T* const* rows);

#if defined(__AVX512F__)
// the flat 3x3 planes, AVX-512 float32 (depthwise_flat_per_isa.cpp)
namespace flat {
void forward_plane(const float* x, const FlatPlane& f, const float* w, float bias, float* out);
void backward_plane(const float* x, const float* g, const FlatPlane& f, const float* wflip, float* gx, float* part);
}  // namespace flat
#endif

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
