// Per-channel kernels of the fused batch norm (batch_norm_api.h), compiled once per SIMD level
// (batch_norm_per_isa.cpp) and picked at run time. A channel is N rows of HW contiguous values, row n
// at x + n * stride. Sums go to float64 lanes in a fixed assignment (see batch_norm_per_isa.cpp), rows
// in order, the lanes added in order at the end: the same bits at every SIMD level.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

template <class T>
struct BatchNormKernels {
  // (sum x, sum (x - shift)^2) over the channel, each only where its pointer is not null
  void (*moments)(const T* x, int64_t N, int64_t HW, int64_t stride, double shift, double* sum, double* sumsq);
  // y = act(x * scale + offset)
  void (*normalize)(const T* x, T* y, int64_t N, int64_t HW, int64_t stride, T scale, T offset, bool relu);
  // (sum g', sum g' (x - mean)), g' = g where y > 0 when relu, else g
  void (*grad_sums)(const T* g, const T* y, const T* x, int64_t N, int64_t HW, int64_t stride, double mean, bool relu,
                    double* sum_g, double* sum_gx);
  // dx = a g' + b x + c
  void (*grad_input)(const T* g, const T* y, const T* x, T* dx, int64_t N, int64_t HW, int64_t stride, T a, T b, T c,
                     bool relu);
};

template <class T>
const BatchNormKernels<T>& batch_norm_kernels();

}  // namespace vision
}  // namespace nimbleops
