// The CPU depthwise convolution's paths, shared by its translation units: depthwise_cpu.cpp (the
// entry points, the plane kernels, the channels_last rows) and depthwise_cpu_nchw.cpp (NCHW
// through the channels_last register blocks, and the flat 3x3 planes). Internal to the CPU kernels.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>

#include "vision/depthwise_api.h"
#include "vision/depthwise_per_isa.h"

namespace nimbleops {
namespace vision {
namespace cpu {

// channels_last, depth multiplier 1, 3x3 or 5x5 at stride 1 or 2 (both ways), dilation 1: the
// shapes of the register-blocked channels_last kernels
inline bool rows_nhwc(const DepthwiseViews& v, const DepthwiseShape& s) {
  return s.m == 1 && v.KH == v.KW && (v.KH == 3 || v.KH == 5) && v.sh == v.sw && (v.sh == 1 || v.sh == 2) &&
         v.dh == 1 && v.dw == 1;
}

// A 64-byte aligned buffer of n elements of T, uninitialised (grows, never shrinks)
template <class T>
struct AlignedBuffer {
  std::unique_ptr<T[]> store;
  int64_t size = 0;
  T* get(int64_t n) {
    constexpr int64_t extra = 64 / int64_t(sizeof(T));
    if (size < n + extra) {
      store.reset(new T[size_t(n + extra)]);  // default-initialised: no pass over the memory
      size = n + extra;
    }
    const uintptr_t p = reinterpret_cast<uintptr_t>(store.get());
    return reinterpret_cast<T*>((p + 63) & ~uintptr_t(63));
  }
};

// Bands of output rows per (image, block of 16 channels) task of the blocked NCHW path, where
// the tasks are few (one image: [1,132,40,40] is 9 blocks for 8 chunks of work on two threads):
// at least 16 tasks, bands of 8 rows or more. A function of the shape only, never of the thread
// count: the weight gradient sums its partials per task, so its order of additions follows the
// bands. Bands are not made thinner than 8 rows because each transposes its K - 1 rows of halo
// again.
inline int64_t row_bands(int64_t tasks, int64_t OH) {
  if (tasks >= 16 || tasks <= 0) return 1;
  return std::max<int64_t>(1, std::min((16 + tasks - 1) / tasks, OH / 8));
}

// The weight and bias gradients of output channel oc (gw[oc * KK + t], gb[oc]; either may be null)
// from its partials: KK taps and the bias, kLanes lanes each, the lanes summed in order
template <class T>
inline void weight_grads_from_lanes(const T* part, int64_t KK, int64_t oc, T* gw, T* gb) {
  for (int64_t t = 0; t <= KK; ++t) {
    T sum = T(0);
    for (int l = 0; l < kLanes; ++l) sum += part[t * kLanes + l];
    if (t < KK && gw) gw[oc * KK + t] = sum;
    if (t == KK && gb) gb[oc] = sum;
  }
}

// NCHW float32 through the channels_last register blocks (depthwise_cpu_nchw.cpp)
bool blocked_nchw(const DepthwiseViews& v, const DepthwiseShape& s);
template <class T>
void forward_nchw_blocked(const DepthwiseViews& v, const DepthwiseShape& s, T* out);
template <class T>
void backward_nchw_blocked(const DepthwiseViews& v, const DepthwiseShape& s, const T* g, T* gx, T* gw, T* gb);

// 3x3 / stride 1 / padding 1 NCHW float32 planes read in place (depthwise_cpu_nchw.cpp)
bool flat_nchw(const DepthwiseViews& v, const DepthwiseShape& s);
template <class T>
void forward_nchw_flat(const DepthwiseViews& v, const DepthwiseShape& s, T* out);
template <class T>
void backward_nchw_flat(const DepthwiseViews& v, const DepthwiseShape& s, const T* g, T* gx, T* gw, T* gb);

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
