// The convolution rows of conv2d_relu_max_pool (conv_pool_api.h), compiled once per SIMD level
// (conv_pool_per_isa.cpp) and picked at run time.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

template <class T>
struct ConvPoolKernels {
  // One output row of the convolution for every output channel, ReLU applied (a nan kept):
  //   out[co * ld + ow] = relu(bias[co] + sum_t w[co * taps + t] src_t[ow]),  co < Cout, ow < width,
  // taps t = r * KW + kw over the window's input rows r = ci * KH + kh, in that order; src_t =
  // rows[r] + (kw % stride) * pitch + kw / stride: input row r split into its `stride` phases
  // (phase q, element j = zero-padded column q + stride j), each `pitch` long. width is a multiple
  // of `lanes`; the phases must be readable up to width - 1 + (KW - 1) / stride.
  void (*conv_row)(const T* w, const T* bias, int64_t Cout, const T* const* rows, int64_t count, int64_t KW,
                   int64_t stride, int64_t pitch, int64_t width, T* out, int64_t ld);
  // out[c] = the maximum of rows[r][c] over r < count, c < width (a multiple of `lanes`), torch's
  // way: a value replaces the maximum when greater or nan
  void (*column_max)(const T* const* rows, int64_t count, int64_t width, T* out);
  // out[c] = the maximum of in[c .. c + k) the same way, c < width (a multiple of `lanes`)
  void (*window_max)(const T* in, int64_t k, int64_t width, T* out);
  int lanes;
};

template <class T>
const ConvPoolKernels<T>& conv_pool_kernels();

}  // namespace vision
}  // namespace nimbleops
