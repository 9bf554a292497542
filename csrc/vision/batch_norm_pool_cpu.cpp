// CPU batch norm + ReLU + max pool (batch_norm_pool_api.h). Channels_last input keeps a pixel's C
// values together, so every pass is a loop over pixels with an inner loop over channels, compiled
// per SIMD level (batch_norm_pool_per_isa.cpp). Forward: the moments per block of kRows image rows
// (two reads: the mean, then the squares about it), the blocks added in order; then each output row
// of the pool computes the batch norm of its windows' pixels as it reads them. Backward: each
// image's pooled gradient g' scattered into grad_x's layout (one thread per image, in output order),
// then the two sums over it per block of kRows image rows, added in order, then grad_x = a g' + B x
// + C in place: every pass but the scatter reads contiguous pixels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "vision/batch_norm_pool_api.h"
#include "vision/batch_norm_pool_per_isa.h"

namespace nimbleops {
namespace vision {

NIMBLEOPS_ISA_KERNEL_TABLES(BatchNormPoolKernels, batch_norm_pool_kernels, batch_norm_pool)

namespace {
constexpr int64_t kRows = 8;  // image rows per block of the sums
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

// per-channel sums over blocks of kRows image rows of N images of rows x cols pixels:
// f(first pixel, pixel count, acc) adds a block's pixels into acc[0..C); the blocks added in order
template <class F>
void row_block_sums(int64_t N, int64_t rows, int64_t cols, int64_t C, int64_t sums, std::vector<double>* totals, F f) {
  const int64_t per_image = (rows + kRows - 1) / kRows, blocks = N * per_image;
  std::vector<double> partial(size_t(sums * blocks * C), 0.0);
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b / per_image, r0 = (b % per_image) * kRows, r1 = std::min(rows, r0 + kRows);
      f((n * rows + r0) * cols, (r1 - r0) * cols, partial.data() + b * C,
        sums > 1 ? partial.data() + (blocks + b) * C : nullptr);
    }
  });
  for (int64_t i = 0; i < sums; ++i) add_blocks(partial.data() + i * blocks * C, blocks, C, totals[i]);
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
    const auto& k = batch_norm_pool_kernels<T>();
    std::vector<double> sum, sumsq;
    row_block_sums(s.N, s.H, s.W, C, 1, &sum, [&](int64_t p0, int64_t count, double* acc, double*) {
      k.pixel_sums(x + p0 * C, count, C, nullptr, acc);
    });
    std::vector<double> mu(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) mu[size_t(c)] = sum[size_t(c)] / M;
    row_block_sums(s.N, s.H, s.W, C, 1, &sumsq, [&](int64_t p0, int64_t count, double* acc, double*) {
      k.pixel_sums(x + p0 * C, count, C, mu.data(), acc);
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
      std::vector<T> out_cols(static_cast<size_t>(s.OW * C));
      std::vector<int32_t> at_cols(static_cast<size_t>(s.OW * C));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / s.OH, oh = t % s.OH;
        const int64_t first = n * C * plane + oh * s.OW;  // the row's first output of channel 0
        k.pool_row(x + n * s.H * s.W * C, s.H, s.W, C, v.kernel, v.stride, v.padding, oh, s.OW, plane, a.data(),
                   b.data(), out_cols.data(), at_cols.data(), o + first, idx + first);
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
    const int64_t C = s.C, plane = s.OH * s.OW, image = s.H * s.W * C;
    const auto& k = batch_norm_pool_kernels<T>();
    // g' scattered into x's layout: grad_x itself, else a buffer of its size
    std::unique_ptr<T[]> buffer;
    T* d = grad_x ? grad_x->ptr<T>() : (buffer.reset(new T[size_t(s.N * image)]), buffer.get());
    parallel_for(s.N, 1, [&](int64_t n0, int64_t n1) {
      std::vector<T> g_cols(static_cast<size_t>(s.OW * C));
      std::vector<int32_t> index_cols(static_cast<size_t>(s.OW * C));
      for (int64_t n = n0; n < n1; ++n)
        k.unpool(g + n * C * plane, o + n * C * plane, idx + n * C * plane, s.H, s.W, C, s.OH, s.OW, v.kernel,
                 v.stride, v.padding, g_cols.data(), index_cols.data(), d + n * image);
    });
    // sum g' and sum g' (x - mean)
    std::vector<double> sums[2];
    row_block_sums(s.N, s.H, s.W, C, 2, sums, [&](int64_t p0, int64_t count, double* sg, double* sgx) {
      k.grad_sums(d + p0 * C, x + p0 * C, count, C, mu, sg, sgx);
    });
    const std::vector<double>& sum_g = sums[0];
    const std::vector<double>& sum_gx = sums[1];
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
    const int64_t pixels = s.N * s.H * s.W, chunk = 1024;
    parallel_for((pixels + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
      const int64_t p0 = c0 * chunk, p1 = std::min(pixels, c1 * chunk);
      k.grad_input(d + p0 * C, x + p0 * C, p1 - p0, C, a.data(), B.data(), Cc.data());
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
