// Per-ISA kernels of the fused batch norm (vision/batch_norm_per_isa.h); see core/isa_unit.h.
// Sums run in 16 float64 lanes held as two vectors of 8 (GCC vector types: the same lane
// arithmetic at every level), element p of a row in lane p % 16; a row's last HW % 16 elements go
// to 16 scalar lanes of their own, from lane 0. The total adds the vector lanes in order, then the
// scalar ones.
#include <cstdint>

#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/batch_norm_per_isa.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

constexpr int kLanes = 16;
typedef Vec<double, 8>::type VD;

template <class T>
using V8 = typename Vec<T, 8>::type;

struct Sums {
  VD s0{}, s1{}, q0{}, q1{};
  double st[kLanes] = {}, qt[kLanes] = {};

  void totals(double* sum, double* sumsq) const {
    double s = 0, q = 0;
    for (int l = 0; l < 8; ++l) s += s0[l];
    for (int l = 0; l < 8; ++l) s += s1[l];
    for (int l = 0; l < kLanes; ++l) s += st[l];
    for (int l = 0; l < 8; ++l) q += q0[l];
    for (int l = 0; l < 8; ++l) q += q1[l];
    for (int l = 0; l < kLanes; ++l) q += qt[l];
    *sum = s;
    *sumsq = q;
  }
};

template <class T>
inline VD widen(const V8<T>& v) {
  return __builtin_convertvector(v, VD);
}

// g where y > 0 (Relu), else g, as 8 float64 values: a vector select, no branch
template <bool Relu, class T>
inline VD masked8(const T* g, const T* y) {
  V8<T> gv = load<V8<T>>(g);
  if (Relu) {
    const V8<T> yv = load<V8<T>>(y), zero = V8<T>{};
    gv = yv > zero ? gv : zero;
  }
  return widen<T>(gv);
}

template <bool Relu, class T>
inline T masked(T g, T y) {
  return Relu ? (y > T(0) ? g : T(0)) : g;
}

// Only the sums asked for: the forward takes the mean in one pass and the squares about it in a
// second, and each pass computing both spent half its arithmetic on a sum it threw away.
template <bool kSum, bool kSq, class T>
void moments_impl(const T* x, int64_t N, int64_t HW, int64_t stride, double shift, double* sum, double* sumsq) {
  Sums a;
  const VD sv = VD{} + shift;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = x + n * stride;
    int64_t p = 0;
    for (; p + kLanes <= HW; p += kLanes) {
      const VD v0 = widen<T>(load<V8<T>>(row + p)), v1 = widen<T>(load<V8<T>>(row + p + 8));
      if constexpr (kSum) {
        a.s0 += v0;
        a.s1 += v1;
      }
      if constexpr (kSq) {
        const VD d0 = v0 - sv, d1 = v1 - sv;
        a.q0 += d0 * d0;
        a.q1 += d1 * d1;
      }
    }
    for (int l = 0; p < HW; ++p, ++l) {
      const double v = double(row[p]), d = v - shift;
      if constexpr (kSum) a.st[l] += v;
      if constexpr (kSq) a.qt[l] += d * d;
    }
  }
  double s, q;
  a.totals(&s, &q);
  if (sum) *sum = s;
  if (sumsq) *sumsq = q;
}

template <class T>
void moments(const T* x, int64_t N, int64_t HW, int64_t stride, double shift, double* sum, double* sumsq) {
  if (sum && sumsq)
    moments_impl<true, true>(x, N, HW, stride, shift, sum, sumsq);
  else if (sum)
    moments_impl<true, false>(x, N, HW, stride, shift, sum, sumsq);
  else
    moments_impl<false, true>(x, N, HW, stride, shift, sum, sumsq);
}

template <class T>
void normalize(const T* x, T* y, int64_t N, int64_t HW, int64_t stride, T scale, T offset, bool relu) {
  for (int64_t n = 0; n < N; ++n) {
    const T* in = x + n * stride;
    T* out = y + n * stride;
    if (relu) {
      for (int64_t p = 0; p < HW; ++p) {
        const T v = in[p] * scale + offset;
        out[p] = v > T(0) ? v : T(0);
      }
    } else {
      for (int64_t p = 0; p < HW; ++p) out[p] = in[p] * scale + offset;
    }
  }
}

template <bool Relu, class T>
void grad_sums_impl(const T* g, const T* y, const T* x, int64_t N, int64_t HW, int64_t stride, double mean,
                    double* sum_g, double* sum_gx) {
  Sums a;
  const VD mv = VD{} + mean;
  for (int64_t n = 0; n < N; ++n) {
    const T* gr = g + n * stride;
    const T* yr = y + n * stride;
    const T* xr = x + n * stride;
    int64_t p = 0;
    for (; p + kLanes <= HW; p += kLanes) {
      const VD g0 = masked8<Relu>(gr + p, yr + p), g1 = masked8<Relu>(gr + p + 8, yr + p + 8);
      const VD x0 = widen<T>(load<V8<T>>(xr + p)), x1 = widen<T>(load<V8<T>>(xr + p + 8));
      a.s0 += g0;
      a.s1 += g1;
      a.q0 += g0 * (x0 - mv);
      a.q1 += g1 * (x1 - mv);
    }
    for (int l = 0; p < HW; ++p, ++l) {
      const double gv = double(masked<Relu>(gr[p], yr[p]));
      a.st[l] += gv;
      a.qt[l] += gv * (double(xr[p]) - mean);
    }
  }
  a.totals(sum_g, sum_gx);
}

template <class T>
void grad_sums(const T* g, const T* y, const T* x, int64_t N, int64_t HW, int64_t stride, double mean, bool relu,
               double* sum_g, double* sum_gx) {
  if (relu)
    grad_sums_impl<true>(g, y, x, N, HW, stride, mean, sum_g, sum_gx);
  else
    grad_sums_impl<false>(g, y, x, N, HW, stride, mean, sum_g, sum_gx);
}

template <bool Relu, class T>
void grad_input_impl(const T* g, const T* y, const T* x, T* dx, int64_t N, int64_t HW, int64_t stride, T a, T b,
                     T c) {
  for (int64_t n = 0; n < N; ++n) {
    const T* gr = g + n * stride;
    const T* yr = y + n * stride;
    const T* xr = x + n * stride;
    T* out = dx + n * stride;
    for (int64_t p = 0; p < HW; ++p) out[p] = a * masked<Relu>(gr[p], yr[p]) + (b * xr[p] + c);
  }
}

template <class T>
void grad_input(const T* g, const T* y, const T* x, T* dx, int64_t N, int64_t HW, int64_t stride, T a, T b, T c,
                bool relu) {
  if (relu)
    grad_input_impl<true>(g, y, x, dx, N, HW, stride, a, b, c);
  else
    grad_input_impl<false>(g, y, x, dx, N, HW, stride, a, b, c);
}

}  // namespace

extern const BatchNormKernels<float> batch_norm_f32;
extern const BatchNormKernels<double> batch_norm_f64;
const BatchNormKernels<float> batch_norm_f32 = {&moments<float>, &normalize<float>, &grad_sums<float>,
                                                &grad_input<float>};
const BatchNormKernels<double> batch_norm_f64 = {&moments<double>, &normalize<double>, &grad_sums<double>,
                                                 &grad_input<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
