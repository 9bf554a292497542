// Training-mode batch normalisation with an optional fused ReLU, over NCHW-contiguous x [N, C, H, W]:
//   mean_c = (1/M) sum x,  var_c = (1/M) sum (x - mean_c)^2  (M = N*H*W, the biased variance),
//   invstd_c = 1 / sqrt(var_c + eps),  y = act(gamma_c (x - mean_c) invstd_c + beta_c)
// with act = max(., 0) when relu is set. The backward, with g' = g where y > 0 (relu) else g:
//   dbeta_c = sum g',  dgamma_c = invstd_c sum g' (x - mean_c),
//   dx = gamma_c invstd_c (g' - dbeta_c / M - (x - mean_c) invstd_c dgamma_c / M).
// Sums are accumulated in float64 in a fixed order by one thread per channel: results do not
// depend on the thread count or SIMD level.
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include "core/check.h"
#include "nimbleops/view.h"

namespace nimbleops {
namespace vision {

struct BatchNormShape {
  int64_t N, C, HW;
};

struct BatchNormViews {
  View x;       // [N, C, H, W], NCHW-contiguous
  View weight;  // gamma [C]
  View bias;    // beta [C]
  double eps = 1e-5;
  bool relu = false;
  BatchNormShape shape{};  // set by check_batch_norm
  bool checked = false;  // the kernels take only checked views
};

// The one check of a call: shapes, dtypes, devices and sizes; stores the shape in v.
void check_batch_norm(BatchNormViews& v);

// A batch norm's gamma and beta ([C], contiguous, of x's dtype and device) and its eps.
inline void check_affine(const View& weight, const View& bias, const View& x, int64_t C, double eps) {
  for (const auto& [view, name] : {std::pair<const View&, const char*>(weight, "weight"), {bias, "bias"}}) {
    check_contiguous(view, name);
    check_dtype(view, x.dtype, name);
    check_numel(view, C, name);
    check_same_device(view, x, name, "x");
  }
  NIMBLEOPS_CHECK(std::isfinite(eps) && eps >= 0, "eps: expected a finite number >= 0, got ", eps);
}

namespace cpu {
// out like x; mean and invstd [C] in x's dtype
void batch_norm_forward(const BatchNormViews& v, const View& out, const View& mean, const View& invstd);
// out: the forward's output (the ReLU mask); any of the gradients may be absent
void batch_norm_backward(const BatchNormViews& v, const View& grad_out, const View& out, const View& mean,
                         const View& invstd, const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                         const std::optional<View>& grad_b);
// torch's update of the running statistics ([C], x's dtype, updated in place) from a forward's
// mean and invstd: running = (1 - momentum) running + momentum stat, the variance recovered as
// 1 / invstd^2 - eps and unbiased by M / (M - 1) (M = N*H*W > 1); each step in x's dtype, as
// torch's tensor arithmetic does it.
void update_running_stats(const BatchNormViews& v, const View& mean, const View& invstd, double momentum,
                          const View& running_mean, const View& running_var);
}  // namespace cpu

}  // namespace vision
}  // namespace nimbleops
