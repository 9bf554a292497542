// Per-ISA loops of the depthwise convolution (vision/depthwise_rows.h); see core/isa_unit.h.
// Fast paths: 3x3 and 5x5 at stride 1 (dilation 1) and stride 2 (split layout); every other
// shape takes the generic loops, with the same summation order.
#include "core/isa_unit.h"
#include "vision/depthwise_rows.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

enum Mode { kGeneric = 0, kStride1 = 1, kSplit2 = 2 };

// the padded input element read by tap (kh, kw) for output ow
template <int M, class Row>
inline auto tap(const Row& a, int64_t kh, int64_t kw, int64_t ow) -> decltype(a.plane) {
  const int64_t r = (a.r0 + kh * a.dh) * a.stride;
  if (M == kStride1) return a.plane + r + ow + kw;
  if (M == kSplit2) return ((kw & 1) ? a.odd : a.even) + r + ow + (kw >> 1);
  return a.plane + r + ow * a.s + kw * a.d;
}

template <int M, int K, class T>
void forward_row_impl(const DwRow<T>& a, const T* w, T bias, T* out) {
  const int64_t KH = K ? K : a.KH, KW = K ? K : a.KW;
  int64_t ow = 0;
  if (M != kGeneric) {
    for (; ow + kLanes <= a.OW; ow += kLanes) {
      T acc[kLanes];
      for (int l = 0; l < kLanes; ++l) acc[l] = bias;
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) {
          const T wv = w[kh * KW + kw];
          const T* x = tap<M>(a, kh, kw, ow);
          for (int l = 0; l < kLanes; ++l) acc[l] += wv * x[l];
        }
      for (int l = 0; l < kLanes; ++l) out[ow + l] = acc[l];
    }
  }
  for (; ow < a.OW; ++ow) {
    T acc = bias;
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) acc += w[kh * KW + kw] * *tap<M>(a, kh, kw, ow);
    out[ow] = acc;
  }
}

template <int M, int K, class T>
void weight_row_impl(const DwRow<T>& a, const T* g, T* part, T* part_bias) {
  const int64_t KH = K ? K : a.KH, KW = K ? K : a.KW;
  int64_t ow = 0;
  for (; ow + kLanes <= a.OW; ow += kLanes) {
    for (int l = 0; l < kLanes; ++l) part_bias[l] += g[ow + l];
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) {
        T* p = part + (kh * KW + kw) * kLanes;
        if (M == kGeneric) {
          for (int l = 0; l < kLanes; ++l) p[l] += g[ow + l] * *tap<M>(a, kh, kw, ow + l);
        } else {
          const T* x = tap<M>(a, kh, kw, ow);
          for (int l = 0; l < kLanes; ++l) p[l] += g[ow + l] * x[l];
        }
      }
  }
  for (int l = 0; ow < a.OW; ++ow, ++l) {  // the tail: lane = ow % 16 as well
    part_bias[l] += g[ow];
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) part[(kh * KW + kw) * kLanes + l] += g[ow] * *tap<M>(a, kh, kw, ow);
  }
}

template <int M, int K, class T>
void input_row_impl(const DwRowMut<T>& a, const T* w, const T* g) {
  const int64_t KH = K ? K : a.KH, KW = K ? K : a.KW;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const T wv = w[kh * KW + kw];
      if (M == kGeneric) {
        for (int64_t ow = 0; ow < a.OW; ++ow) *tap<M>(a, kh, kw, ow) += wv * g[ow];
      } else {
        T* x = tap<M>(a, kh, kw, 0);
#pragma GCC ivdep
        for (int64_t ow = 0; ow < a.OW; ++ow) x[ow] += wv * g[ow];
      }
    }
}

template <class T>
void forward_row(const DwRow<T>& a, const T* w, T bias, T* out) {
  const bool k3 = a.KH == 3 && a.KW == 3, k5 = a.KH == 5 && a.KW == 5;
  if (a.s == 1 && a.d == 1 && k3) return forward_row_impl<kStride1, 3>(a, w, bias, out);
  if (a.s == 1 && a.d == 1 && k5) return forward_row_impl<kStride1, 5>(a, w, bias, out);
  if (split_stride2(a.KH, a.KW, a.s, a.d)) {
    if (k3) return forward_row_impl<kSplit2, 3>(a, w, bias, out);
    return forward_row_impl<kSplit2, 5>(a, w, bias, out);
  }
  forward_row_impl<kGeneric, 0>(a, w, bias, out);
}

template <class T>
void weight_row(const DwRow<T>& a, const T* g, T* part, T* part_bias) {
  const bool k3 = a.KH == 3 && a.KW == 3, k5 = a.KH == 5 && a.KW == 5;
  if (a.s == 1 && a.d == 1 && k3) return weight_row_impl<kStride1, 3>(a, g, part, part_bias);
  if (a.s == 1 && a.d == 1 && k5) return weight_row_impl<kStride1, 5>(a, g, part, part_bias);
  if (split_stride2(a.KH, a.KW, a.s, a.d)) {
    if (k3) return weight_row_impl<kSplit2, 3>(a, g, part, part_bias);
    return weight_row_impl<kSplit2, 5>(a, g, part, part_bias);
  }
  weight_row_impl<kGeneric, 0>(a, g, part, part_bias);
}

template <class T>
void input_row(const DwRowMut<T>& a, const T* w, const T* g) {
  const bool k3 = a.KH == 3 && a.KW == 3, k5 = a.KH == 5 && a.KW == 5;
  if (a.s == 1 && a.d == 1 && k3) return input_row_impl<kStride1, 3>(a, w, g);
  if (a.s == 1 && a.d == 1 && k5) return input_row_impl<kStride1, 5>(a, w, g);
  if (split_stride2(a.KH, a.KW, a.s, a.d)) {
    if (k3) return input_row_impl<kSplit2, 3>(a, w, g);
    return input_row_impl<kSplit2, 5>(a, w, g);
  }
  input_row_impl<kGeneric, 0>(a, w, g);
}

template <class T>
void forward_pixel_nhwc(const T* const* src, const int64_t* tap_index, int64_t taps, const T* w, const T* bias,
                        int64_t C, T* out) {
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    T acc[kLanes];
    for (int l = 0; l < kLanes; ++l) acc[l] = bias ? bias[c + l] : T(0);
    for (int64_t t = 0; t < taps; ++t) {
      const T* x = src[t] + c;
      const T* wt = w + tap_index[t] * C + c;
      for (int l = 0; l < kLanes; ++l) acc[l] += wt[l] * x[l];
    }
    for (int l = 0; l < kLanes; ++l) out[c + l] = acc[l];
  }
  for (; c < C; ++c) {
    T acc = bias ? bias[c] : T(0);
    for (int64_t t = 0; t < taps; ++t) acc += w[tap_index[t] * C + c] * src[t][c];
    out[c] = acc;
  }
}

}  // namespace

extern const DepthwiseKernels<float> depthwise_f32;
extern const DepthwiseKernels<double> depthwise_f64;
const DepthwiseKernels<float> depthwise_f32 = {&forward_row<float>, &weight_row<float>, &input_row<float>,
                                               &forward_pixel_nhwc<float>};
const DepthwiseKernels<double> depthwise_f64 = {&forward_row<double>, &weight_row<double>, &input_row<double>,
                                                &forward_pixel_nhwc<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
