// Depthwise-convolution inner loops over one output row, compiled once per SIMD level
// (depthwise_rows.cpp) and picked at run time. The input plane arrives zero-padded, so the loops
// have no borders. Summation orders are fixed in the source (every output: bias, then the taps in
// (kh, kw) order; every weight-gradient partial: lane ow % 16, rows in call order), not by the
// vector width, and FMA contraction is off: every level gives the same bits.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

constexpr int kLanes = 16;  // outputs per vector step; partial sums of the weight gradient per tap

// Column stride 2, column dilation 1, 3x3 or 5x5: the padded rows are split into even and odd
// columns, so every tap reads consecutive elements (padded column 2*ow + kw is even[ow + kw/2]
// when kw is even, odd[ow + kw/2] when it is odd).
inline bool split_stride2(int64_t KH, int64_t KW, int64_t s, int64_t d) {
  return s == 2 && d == 1 && KH == KW && (KH == 3 || KH == 5);
}

// One output row oh of one plane: the padded plane (row r of it at plane + r * stride; split
// layout: even + r * stride and odd + r * stride), the first padded row r0 = oh * row stride,
// the row dilation dh; s and d: the column stride and dilation.
template <class T>
struct DwRow {
  const T* plane = nullptr;  // unsplit layout
  const T* even = nullptr;   // split layout
  const T* odd = nullptr;
  int64_t stride = 0, r0 = 0, dh = 1, OW = 0, KH = 1, KW = 1, s = 1, d = 1;
};

template <class T>
struct DwRowMut {  // the same for the padded grad_input plane (written)
  T* plane = nullptr;
  T* even = nullptr;
  T* odd = nullptr;
  int64_t stride = 0, r0 = 0, dh = 1, OW = 0, KH = 1, KW = 1, s = 1, d = 1;
};

template <class T>
struct DepthwiseKernels {
  // out[ow] = bias + sum_{kh, kw} w[kh * KW + kw] * x(r0 + kh * dh, ow * s + kw * d), ow < OW
  void (*forward_row)(const DwRow<T>& a, const T* w, T bias, T* out);
  // part[(kh * KW + kw) * 16 + ow % 16] += g[ow] * x(...); part_bias[ow % 16] += g[ow]
  void (*weight_row)(const DwRow<T>& a, const T* g, T* part, T* part_bias);
  // gx(r0 + kh * dh, ow * s + kw * d) += w[kh * KW + kw] * g[ow], taps in (kh, kw) order
  void (*input_row)(const DwRowMut<T>& a, const T* w, const T* g);
  // channels_last, depth multiplier 1: one output pixel's C channels,
  // out[c] = bias[c] + sum over the taps t < taps of w[tap[t] * C + c] * src[t][c]
  void (*forward_pixel_nhwc)(const T* const* src, const int64_t* tap, int64_t taps, const T* w, const T* bias,
                             int64_t C, T* out);
};

template <class T>
const DepthwiseKernels<T>& depthwise_kernels();

}  // namespace vision
}  // namespace nimbleops
