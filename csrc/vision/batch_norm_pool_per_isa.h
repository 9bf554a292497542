// Per-pixel loops of the batch norm + ReLU + max pool op (batch_norm_pool_api.h), compiled once per
// SIMD level (batch_norm_pool_per_isa.cpp) and picked at run time. A pixel holds its C channels
// together (channels_last); every loop runs over pixels in order with an inner loop over the
// channels, whose values are independent, so each level computes the same operations in the same
// order per value: the same bits at every level.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

template <class T>
struct BatchNormPoolKernels {
  // acc[c] += x[p C + c] (shift null) or (x[p C + c] - shift[c])^2, in float64, over pixels p < count
  void (*pixel_sums)(const T* x, int64_t count, int64_t C, const double* shift, double* acc);
  // Output row oh of one image (xn: its [H, W, C] pixels): out and index of each output column ow,
  // channel c's at orow[c * plane + ow] / irow[c * plane + ow], the window's maximum of a x + b
  // (see batch_norm_pool_api.h); out_cols / at_cols: scratch of OW * C values
  void (*pool_row)(const T* xn, int64_t H, int64_t W, int64_t C, int64_t kernel, int64_t stride, int64_t padding,
                   int64_t oh, int64_t OW, int64_t plane, const T* a, const T* b, T* out_cols, int32_t* at_cols,
                   T* orow, int32_t* irow);
  // One image's pooled gradient laid out like x: dn [H W C] = for each pixel and channel, the sum of
  // g' (g where out > 0) over the outputs that kept it, added in output order (g, out, index: the
  // image's [C, OH * OW] planes); g_cols / index_cols: scratch of OW * C values
  void (*unpool)(const T* g, const T* out, const int32_t* index, int64_t H, int64_t W, int64_t C, int64_t OH,
                 int64_t OW, int64_t kernel, int64_t stride, int64_t padding, T* g_cols, int32_t* index_cols, T* dn);
  // sg[c] += d[p C + c], sgx[c] += d[p C + c] (x[p C + c] - mean[c]), in float64, over pixels p < count
  void (*grad_sums)(const T* d, const T* x, int64_t count, int64_t C, const T* mean, double* sg, double* sgx);
  // d[p C + c] = a[c] d[p C + c] + (B[c] x[p C + c] + Cc[c]) over pixels p < count, in place
  void (*grad_input)(T* d, const T* x, int64_t count, int64_t C, const T* a, const T* B, const T* Cc);
};

template <class T>
const BatchNormPoolKernels<T>& batch_norm_pool_kernels();

}  // namespace vision
}  // namespace nimbleops
