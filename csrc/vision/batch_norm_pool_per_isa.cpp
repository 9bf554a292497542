// Per-ISA loops of the batch norm + ReLU + max pool op (vision/batch_norm_pool_per_isa.h); see
// core/isa_unit.h. Plain loops over the channels of a pixel, which the compiler vectorises at each
// level's width; no std:: templates (isa_unit.h).
#include <cstdint>

#include "core/isa_unit.h"
#include "vision/batch_norm_pool_per_isa.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

// The rows (or columns) [start, end) of output row (column) o's window inside an image of `size`
inline int64_t window_start(int64_t o, int64_t stride, int64_t padding) {
  return o * stride - padding < 0 ? 0 : o * stride - padding;
}
inline int64_t window_end(int64_t o, int64_t stride, int64_t padding, int64_t kernel, int64_t size) {
  return o * stride - padding + kernel > size ? size : o * stride - padding + kernel;
}

template <class T>
void pixel_sums(const T* __restrict x, int64_t count, int64_t C, const double* __restrict shift,
                double* __restrict acc) {
  for (int64_t p = 0; p < count; ++p) {
    const T* __restrict px = x + p * C;
    if (shift) {
      for (int64_t c = 0; c < C; ++c) {
        const double d = double(px[c]) - shift[c];
        acc[c] += d * d;
      }
    } else {
      for (int64_t c = 0; c < C; ++c) acc[c] += double(px[c]);
    }
  }
}

// kC > 0: C is kC (the loops' trip counts known, best and at held in registers); 0: any C.
// Each output column's values are kept in out_cols / at_cols ([OW, C]) and stored channel by
// channel at the end, as contiguous rows of the output planes.
template <class T, int kC>
void pool_row_c(const T* __restrict xn, int64_t H, int64_t W, int64_t C_runtime, int64_t kernel, int64_t stride,
                int64_t padding, int64_t oh, int64_t OW, int64_t plane, const T* __restrict a, const T* __restrict b,
                T* __restrict out_cols, int32_t* __restrict at_cols, T* __restrict orow, int32_t* __restrict irow) {
  const int64_t C = kC > 0 ? kC : C_runtime;
  const int64_t h0 = window_start(oh, stride, padding), h1 = window_end(oh, stride, padding, kernel, H);
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t w0 = window_start(ow, stride, padding), w1 = window_end(ow, stride, padding, kernel, W);
    const int32_t first = int32_t(h0 * W + w0);
    T* __restrict best = out_cols + ow * C;
    int32_t* __restrict at = at_cols + ow * C;
    for (int64_t c = 0; c < C; ++c) {
      best[c] = -T(__builtin_inf());
      at[c] = first;
    }
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const T* __restrict px = xn + (h * W + w) * C;
        const int32_t pos = int32_t(h * W + w);
        for (int64_t c = 0; c < C; ++c) {
          const T y = a[c] * px[c] + b[c];
          const bool up = y > best[c] || y != y;  // torch's max pool: greater, or nan
          best[c] = up ? y : best[c];
          at[c] = up ? pos : at[c];
        }
      }
    for (int64_t c = 0; c < C; ++c) {
      const T m = best[c];
      best[c] = (m > T(0) || m != m) ? m : T(0);  // relu, nan kept (torch's clamp_min)
    }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ow = 0; ow < OW; ++ow) {
      orow[c * plane + ow] = out_cols[ow * C + c];
      irow[c * plane + ow] = at_cols[ow * C + c];
    }
}

template <class T>
void pool_row(const T* xn, int64_t H, int64_t W, int64_t C, int64_t kernel, int64_t stride, int64_t padding,
              int64_t oh, int64_t OW, int64_t plane, const T* a, const T* b, T* out_cols, int32_t* at_cols, T* orow,
              int32_t* irow) {
  if (C == 24)  // ShuffleNet's stem
    pool_row_c<T, 24>(xn, H, W, C, kernel, stride, padding, oh, OW, plane, a, b, out_cols, at_cols, orow, irow);
  else
    pool_row_c<T, 0>(xn, H, W, C, kernel, stride, padding, oh, OW, plane, a, b, out_cols, at_cols, orow, irow);
}

// Output row by output row: the row's g' and index are first gathered from the C planes into
// [OW, C] scratch (contiguous reads), then added at their pixels, which lie in the row's windows (a
// few image rows, in cache). An image row is zeroed just before the first output row whose windows
// reach it, so no pass zeroes the whole image first.
template <class T>
void unpool(const T* __restrict g, const T* __restrict out, const int32_t* __restrict index, int64_t H, int64_t W,
            int64_t C, int64_t OH, int64_t OW, int64_t kernel, int64_t stride, int64_t padding, T* __restrict g_cols,
            int32_t* __restrict index_cols, T* __restrict dn) {
  const int64_t plane = OH * OW, row = W * C;
  int64_t zeroed = 0;  // image rows [0, zeroed) are zeroed (and maybe written)
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h1 = window_end(oh, stride, padding, kernel, H);
    for (int64_t i = zeroed * row; i < h1 * row; ++i) dn[i] = T(0);
    zeroed = h1 > zeroed ? h1 : zeroed;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t q0 = c * plane + oh * OW;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const T gv = g[q0 + ow], ov = out[q0 + ow];  // both read: a select, not a branch
        g_cols[ow * C + c] = ov > T(0) ? gv : T(0);
        index_cols[ow * C + c] = index[q0 + ow];
      }
    }
    for (int64_t ow = 0; ow < OW; ++ow)
      for (int64_t c = 0; c < C; ++c) dn[int64_t(index_cols[ow * C + c]) * C + c] += g_cols[ow * C + c];
  }
  for (int64_t i = zeroed * row; i < H * row; ++i) dn[i] = T(0);
}

template <class T>
void grad_sums(const T* __restrict d, const T* __restrict x, int64_t count, int64_t C, const T* __restrict mean,
               double* __restrict sg, double* __restrict sgx) {
  for (int64_t p = 0; p < count; ++p) {
    const T* __restrict dp = d + p * C;
    const T* __restrict xp = x + p * C;
    for (int64_t c = 0; c < C; ++c) {
      const double v = double(dp[c]);
      sg[c] += v;
      sgx[c] += v * (double(xp[c]) - double(mean[c]));
    }
  }
}

template <class T>
void grad_input(T* __restrict d, const T* __restrict x, int64_t count, int64_t C, const T* __restrict a,
                const T* __restrict B, const T* __restrict Cc) {
  for (int64_t p = 0; p < count; ++p) {
    T* __restrict dp = d + p * C;
    const T* __restrict xp = x + p * C;
    for (int64_t c = 0; c < C; ++c) dp[c] = a[c] * dp[c] + (B[c] * xp[c] + Cc[c]);
  }
}

}  // namespace

extern const BatchNormPoolKernels<float> batch_norm_pool_f32;
extern const BatchNormPoolKernels<double> batch_norm_pool_f64;
const BatchNormPoolKernels<float> batch_norm_pool_f32 = {&pixel_sums<float>, &pool_row<float>, &unpool<float>,
                                                         &grad_sums<float>, &grad_input<float>};
const BatchNormPoolKernels<double> batch_norm_pool_f64 = {&pixel_sums<double>, &pool_row<double>, &unpool<double>,
                                                          &grad_sums<double>, &grad_input<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
