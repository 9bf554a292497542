// CPU fused batch norm (+ ReLU), training mode: one task per channel, which reads its N rows for
// the moments and again (now in cache) to write the output; the backward likewise (the sums, then
// grad_input). See batch_norm_api.h for the math.
#include <cmath>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "vision/batch_norm_api.h"
#include "vision/batch_norm_per_isa.h"

namespace nimbleops {
namespace vision {

NIMBLEOPS_ISA_KERNEL_TABLES(BatchNormKernels, batch_norm_kernels, batch_norm)

void check_batch_norm(BatchNormViews& v) {
  NIMBLEOPS_CHECK(v.x.ndim() == 4, "x: expected [N, C, H, W], got shape ", shape_str(v.x));
  NIMBLEOPS_CHECK(v.x.dtype == DType::float32 || v.x.dtype == DType::float64, "x: expected float32 or float64, got ",
                  dtype_name(v.x.dtype));
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array for the CPU kernels");
  check_contiguous(v.x, "x");
  BatchNormShape s{v.x.shape[0], v.x.shape[1], v.x.shape[2] * v.x.shape[3]};
  NIMBLEOPS_CHECK(s.N * s.HW > 1, "x: expected more than one value per channel in training mode, got shape ",
                  shape_str(v.x));
  check_affine(v.weight, v.bias, v.x, s.C, v.eps);
  v.shape = s;
  v.checked = true;
}

namespace cpu {

void batch_norm_forward(const BatchNormViews& v, const View& out, const View& mean, const View& invstd) {
  const BatchNormShape& s = checked_shape(v);
  check_contiguous(out, "out");
  check_dtype(out, v.x.dtype, "out");
  check_numel(out, s.N * s.C * s.HW, "out");
  for (const auto& [view, name] : {std::pair<const View&, const char*>(mean, "mean"), {invstd, "invstd"}}) {
    check_contiguous(view, name);
    check_dtype(view, v.x.dtype, name);
    check_numel(view, s.C, name);
  }
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const auto& k = batch_norm_kernels<T>();
    const T* x = v.x.ptr<T>();
    const T* gamma = v.weight.ptr<T>();
    const T* beta = v.bias.ptr<T>();
    T* y = out.ptr<T>();
    T* mean_out = mean.ptr<T>();
    T* invstd_out = invstd.ptr<T>();
    const int64_t stride = s.C * s.HW;
    const double M = double(s.N * s.HW);
    parallel_for(s.C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const T* xc = x + c * s.HW;
        double sum, sumsq;
        // the mean, then the squares about it (a second read, from cache: no cancellation)
        k.moments(xc, s.N, s.HW, stride, 0.0, &sum, nullptr);
        const double mu = sum / M;
        k.moments(xc, s.N, s.HW, stride, mu, nullptr, &sumsq);
        const double inv = 1.0 / std::sqrt(sumsq / M + v.eps);
        const double scale = double(gamma[c]) * inv;
        k.normalize(xc, y + c * s.HW, s.N, s.HW, stride, T(scale), T(double(beta[c]) - mu * scale), v.relu);
        mean_out[c] = T(mu);
        invstd_out[c] = T(inv);
      }
    });
  });
}

void update_running_stats(const BatchNormViews& v, const View& mean, const View& invstd, double momentum,
                          const View& running_mean, const View& running_var) {
  const BatchNormShape& s = checked_shape(v);
  for (const auto& [view, name] : {std::pair<const View&, const char*>(mean, "mean"), {invstd, "invstd"},
                                   {running_mean, "running_mean"}, {running_var, "running_var"}}) {
    check_contiguous(view, name);
    check_dtype(view, v.x.dtype, name);
    check_numel(view, s.C, name);
  }
  NIMBLEOPS_CHECK(momentum >= 0 && momentum <= 1, "momentum: expected a number in [0, 1], got ", momentum);
  const double M = double(s.N * s.HW);
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const T* mu = mean.ptr<T>();
    const T* is = invstd.ptr<T>();
    T* rm = running_mean.ptr<T>();
    T* rv = running_var.ptr<T>();
    const T keep = T(1 - momentum), take = T(momentum), eps = T(v.eps), unbias = T(M / (M - 1));
    for (int64_t c = 0; c < s.C; ++c) {
      const T var = (T(1) / (is[c] * is[c]) - eps) * unbias;
      // torch's add_(stat, alpha=momentum) is a fused multiply-add in its vectorised loop
      rm[c] = std::fma(take, mu[c], rm[c] * keep);
      rv[c] = std::fma(take, var, rv[c] * keep);
    }
  });
}

void batch_norm_backward(const BatchNormViews& v, const View& grad_out, const View& out, const View& mean,
                         const View& invstd, const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                         const std::optional<View>& grad_b) {
  const BatchNormShape& s = checked_shape(v);
  auto check_like_x = [&](const View& t, const char* name) {
    check_contiguous(t, name);
    check_dtype(t, v.x.dtype, name);
    check_numel(t, s.N * s.C * s.HW, name);
  };
  auto check_channels = [&](const View& t, const char* name) {
    check_contiguous(t, name);
    check_dtype(t, v.x.dtype, name);
    check_numel(t, s.C, name);
  };
  check_like_x(grad_out, "grad_output");
  check_like_x(out, "out");
  check_channels(mean, "mean");
  check_channels(invstd, "invstd");
  if (grad_x) check_like_x(*grad_x, "grad_input");
  if (grad_w) check_channels(*grad_w, "grad_weight");
  if (grad_b) check_channels(*grad_b, "grad_bias");
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const auto& k = batch_norm_kernels<T>();
    const T* x = v.x.ptr<T>();
    const T* g = grad_out.ptr<T>();
    const T* y = out.ptr<T>();
    const T* gamma = v.weight.ptr<T>();
    const T* mu = mean.ptr<T>();
    const T* is = invstd.ptr<T>();
    const int64_t stride = s.C * s.HW;
    const double M = double(s.N * s.HW);
    parallel_for(s.C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = c * s.HW;
        const double m = double(mu[c]), inv = double(is[c]);
        double sum_g, sum_gx;
        k.grad_sums(g + off, y + off, x + off, s.N, s.HW, stride, m, v.relu, &sum_g, &sum_gx);
        if (grad_b) grad_b->ptr<T>()[c] = T(sum_g);
        if (grad_w) grad_w->ptr<T>()[c] = T(sum_gx * inv);
        if (grad_x) {
          // dx = gamma inv (g' - sum_g / M - (x - m) inv^2 sum_gx / M) = a g' + b x + c
          const double a = double(gamma[c]) * inv, b = -a * inv * inv * sum_gx / M;
          const double cc = -a * sum_g / M - b * m;
          k.grad_input(g + off, y + off, x + off, grad_x->ptr<T>() + off, s.N, s.HW, stride, T(a), T(b), T(cc),
                       v.relu);
        }
      }
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
