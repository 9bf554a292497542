// CPU batch norm + ReLU + max pool (batch_norm_pool_api.h). Channels_last input keeps a pixel's C
// values together, so every pass is a loop over pixels with an inner loop over channels that the
// compiler vectorises. Forward: the moments per block of kRows image rows (two reads: the mean, then
// the squares about it), the blocks added in order; then each output row of the pool computes the
// batch norm of its windows' pixels as it reads them. Backward: the two sums per block of output
// rows, added in order; then each image's gradient (the dense B x + C, then the scattered a g') on
// one thread.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "vision/batch_norm_pool_api.h"

namespace nimbleops {
namespace vision {

namespace {
constexpr int64_t kRows = 8;  // image rows (forward moments) or output rows (backward sums) per block
}

void check_batch_norm_pool(BatchNormPoolViews& v) {
  NIMBLEOPS_CHECK(v.x.ndim() == 4, "x: expected [N, C, H, W], got shape ", shape_str(v.x));
  NIMBLEOPS_CHECK(v.x.dtype == DType::float32 || v.x.dtype == DType::float64, "x: expected float32 or float64, got ",
                  dtype_name(v.x.dtype));
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array for the CPU kernels");
  NIMBLEOPS_CHECK(v.x.is_channels_last(), "x: expected a channels_last-contiguous array");
  BatchNormPoolShape s{v.x.shape[0], v.x.shape[1], v.x.shape[2], v.x.shape[3], 0, 0};
  NIMBLEOPS_CHECK(v.kernel >= 1, "kernel_size: expected an integer >= 1, got ", v.kernel);
  NIMBLEOPS_CHECK(v.stride >= 1, "stride: expected an integer >= 1, got ", v.stride);
  NIMBLEOPS_CHECK(v.padding >= 0 && 2 * v.padding <= v.kernel,
                  "padding: expected an integer in [0, kernel_size / 2] = [0, ", v.kernel / 2, "], got ", v.padding);
  NIMBLEOPS_CHECK(s.H + 2 * v.padding >= v.kernel && s.W + 2 * v.padding >= v.kernel,
                  "x: expected H and W of at least ", v.kernel - 2 * v.padding, " for kernel_size ", v.kernel,
                  " and padding ", v.padding, ", got shape ", shape_str(v.x));
  NIMBLEOPS_CHECK(s.N * s.H * s.W > 1, "x: expected more than one value per channel in training mode, got shape ",
                  shape_str(v.x));
  NIMBLEOPS_CHECK(s.H * s.W <= std::numeric_limits<int32_t>::max(), "x: expected H * W below 2**31, got shape ",
                  shape_str(v.x));
  s.OH = (s.H + 2 * v.padding - v.kernel) / v.stride + 1;
  s.OW = (s.W + 2 * v.padding - v.kernel) / v.stride + 1;
  check_affine(v.weight, v.bias, v.x, s.C, v.eps);
  v.shape = s;
  v.checked = true;
}

namespace cpu {

namespace {

// sum over the blocks of partial[block * C + c], in block order
void add_blocks(const double* partial, int64_t blocks, int64_t C, std::vector<double>& total) {
  total.assign(size_t(C), 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < C; ++c) total[size_t(c)] += partial[size_t(b * C + c)];
}

// per-channel sums of f(pixel values) over blocks of kRows rows of an [N, rows, cols, C] array
template <class T, class F>
void row_block_sums(const T* x, int64_t N, int64_t rows, int64_t cols, int64_t C, std::vector<double>& total, F f) {
  const int64_t per_image = (rows + kRows - 1) / kRows, blocks = N * per_image;
  std::vector<double> partial(size_t(blocks * C), 0.0);
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b / per_image, r0 = (b % per_image) * kRows, r1 = std::min(rows, r0 + kRows);
      double* acc = partial.data() + b * C;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t q = 0; q < cols; ++q) {
          const T* px = x + ((n * rows + r) * cols + q) * C;
          for (int64_t c = 0; c < C; ++c) acc[c] += f(px[c], c);
        }
    }
  });
  add_blocks(partial.data(), blocks, C, total);
}

}  // namespace

void batch_norm_pool_forward(const BatchNormPoolViews& v, const View& out, const View& index, const View& mean,
                             const View& invstd) {
  const BatchNormPoolShape& s = checked_shape(v);
  const int64_t outputs = s.N * s.C * s.OH * s.OW;
  check_host_array(out, v.x.dtype, outputs, "out");
  check_host_array(index, DType::int32, outputs, "index");
  check_host_array(mean, v.x.dtype, s.C, "mean");
  check_host_array(invstd, v.x.dtype, s.C, "invstd");
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const T* x = v.x.ptr<T>();
    const T* gamma = v.weight.ptr<T>();
    const T* beta = v.bias.ptr<T>();
    const int64_t C = s.C;
    const double M = double(s.N * s.H * s.W);
    std::vector<double> sum, sumsq;
    row_block_sums(x, s.N, s.H, s.W, C, sum, [](T value, int64_t) { return double(value); });
    std::vector<double> mu(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) mu[size_t(c)] = sum[size_t(c)] / M;
    row_block_sums(x, s.N, s.H, s.W, C, sumsq, [&](T value, int64_t c) {
      const double d = double(value) - mu[size_t(c)];
      return d * d;
    });
    std::vector<T> a(static_cast<size_t>(C)), b(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      const double inv = 1.0 / std::sqrt(sumsq[size_t(c)] / M + v.eps);
      const double scale = double(gamma[c]) * inv;
      a[size_t(c)] = T(scale);
      b[size_t(c)] = T(double(beta[c]) - mu[size_t(c)] * scale);
      mean.ptr<T>()[c] = T(mu[size_t(c)]);
      invstd.ptr<T>()[c] = T(inv);
    }
    T* o = out.ptr<T>();
    int32_t* idx = index.ptr<int32_t>();
    const int64_t plane = s.OH * s.OW;
    parallel_for(s.N * s.OH, 1, [&](int64_t t0, int64_t t1) {
      std::vector<T> best(static_cast<size_t>(C));
      std::vector<int32_t> at(static_cast<size_t>(C));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / s.OH, oh = t % s.OH;
        const int64_t h0 = std::max<int64_t>(0, oh * v.stride - v.padding);
        const int64_t h1 = std::min(s.H, oh * v.stride - v.padding + v.kernel);
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          const int64_t w0 = std::max<int64_t>(0, ow * v.stride - v.padding);
          const int64_t w1 = std::min(s.W, ow * v.stride - v.padding + v.kernel);
          const int32_t first = int32_t(h0 * s.W + w0);
          for (int64_t c = 0; c < C; ++c) {
            best[size_t(c)] = -std::numeric_limits<T>::infinity();
            at[size_t(c)] = first;
          }
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const T* px = x + ((n * s.H + h) * s.W + w) * C;
              const int32_t pos = int32_t(h * s.W + w);
              for (int64_t c = 0; c < C; ++c) {
                const T y = a[size_t(c)] * px[c] + b[size_t(c)];
                const bool up = y > best[size_t(c)] || y != y;
                best[size_t(c)] = up ? y : best[size_t(c)];
                at[size_t(c)] = up ? pos : at[size_t(c)];
              }
            }
          T* orow = o + n * C * plane + oh * s.OW + ow;
          int32_t* irow = idx + n * C * plane + oh * s.OW + ow;
          for (int64_t c = 0; c < C; ++c) {
            const T m = best[size_t(c)];
            orow[c * plane] = (m > T(0) || m != m) ? m : T(0);  // relu, nan kept (torch's clamp_min)
            irow[c * plane] = at[size_t(c)];
          }
        }
      }
    });
  });
}

void batch_norm_pool_backward(const BatchNormPoolViews& v, const View& grad_out, const View& out, const View& index,
                              const View& mean, const View& invstd, const std::optional<View>& grad_x,
                              const std::optional<View>& grad_w, const std::optional<View>& grad_b) {
  const BatchNormPoolShape& s = checked_shape(v);
  const int64_t outputs = s.N * s.C * s.OH * s.OW;
  check_host_array(grad_out, v.x.dtype, outputs, "grad_output");
  check_host_array(out, v.x.dtype, outputs, "out");
  check_host_array(index, DType::int32, outputs, "index");
  check_host_array(mean, v.x.dtype, s.C, "mean");
  check_host_array(invstd, v.x.dtype, s.C, "invstd");
  if (grad_x) {
    check_dtype(*grad_x, v.x.dtype, "grad_input");
    NIMBLEOPS_CHECK(grad_x->device < 0 && grad_x->shape == v.x.shape && grad_x->is_channels_last(),
                    "grad_input: expected a channels_last-contiguous CPU array of x's shape ", shape_str(v.x));
  }
  if (grad_w) check_host_array(*grad_w, v.x.dtype, s.C, "grad_weight");
  if (grad_b) check_host_array(*grad_b, v.x.dtype, s.C, "grad_bias");
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const T* x = v.x.ptr<T>();
    const T* g = grad_out.ptr<T>();
    const T* o = out.ptr<T>();
    const int32_t* idx = index.ptr<int32_t>();
    const T* mu = mean.ptr<T>();
    const T* inv = invstd.ptr<T>();
    const T* gamma = v.weight.ptr<T>();
    const int64_t C = s.C, plane = s.OH * s.OW;
    // sum g' and sum g' (x - mean) over blocks of output rows, in order
    const int64_t per_image = (s.OH + kRows - 1) / kRows, blocks = s.N * per_image;
    std::vector<double> partial(size_t(2 * blocks * C), 0.0);
    parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t bl = b0; bl < b1; ++bl) {
        const int64_t n = bl / per_image, r0 = (bl % per_image) * kRows, r1 = std::min(s.OH, r0 + kRows);
        double* sg = partial.data() + bl * C;
        double* sgx = partial.data() + (blocks + bl) * C;
        // outputs in order, each with all its channels (their kept pixels share the window's
        // cache lines); no branch: the mask is random
        const T* xn = x + n * s.H * s.W * C;
        for (int64_t q = r0 * s.OW; q < r1 * s.OW; ++q)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t k = (n * C + c) * plane + q;
            const double gq = o[k] > T(0) ? double(g[k]) : 0.0;
            sg[c] += gq;
            sgx[c] += gq * (double(xn[int64_t(idx[k]) * C + c]) - double(mu[c]));
          }
      }
    });
    std::vector<double> sum_g, sum_gx;
    add_blocks(partial.data(), blocks, C, sum_g);
    add_blocks(partial.data() + blocks * C, blocks, C, sum_gx);
    if (grad_b)
      for (int64_t c = 0; c < C; ++c) grad_b->ptr<T>()[c] = T(sum_g[size_t(c)]);
    if (grad_w)
      for (int64_t c = 0; c < C; ++c) grad_w->ptr<T>()[c] = T(double(inv[c]) * sum_gx[size_t(c)]);
    if (!grad_x) return;
    const double M = double(s.N * s.H * s.W);
    std::vector<T> a(static_cast<size_t>(C)), B(static_cast<size_t>(C)), Cc(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      const double ac = double(gamma[c]) * double(inv[c]);
      const double bc = -ac * double(inv[c]) * double(inv[c]) * sum_gx[size_t(c)] / M;
      a[size_t(c)] = T(ac);
      B[size_t(c)] = T(bc);
      Cc[size_t(c)] = T(-ac * sum_g[size_t(c)] / M - bc * double(mu[c]));
    }
    T* dx = grad_x->ptr<T>();
    const int64_t image = s.H * s.W * C;
    parallel_for(s.N, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const T* xn = x + n * image;
        T* dn = dx + n * image;
        for (int64_t p = 0; p < s.H * s.W; ++p)
          for (int64_t c = 0; c < C; ++c) dn[p * C + c] = B[size_t(c)] * xn[p * C + c] + Cc[size_t(c)];
        // each (pixel, channel) receives its windows' gradients in output order
        for (int64_t q = 0; q < plane; ++q)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t k = (n * C + c) * plane + q;
            dn[int64_t(idx[k]) * C + c] += a[size_t(c)] * (o[k] > T(0) ? g[k] : T(0));
          }
      }
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
