// Training-mode batch norm + ReLU + max pool in one op (a stem's tail: conv -> BN -> ReLU -> pool),
// over channels_last-contiguous x [N, C, H, W] (memory [N, H, W, C]):
//   mean, var, invstd as in batch_norm_api.h (M = N*H*W, biased variance),
//   y = a_c x + b_c with a_c = gamma_c invstd_c, b_c = beta_c - mean_c a_c,
//   out[n, c, oh, ow] = relu(max over the window of y), the window rows oh*stride - padding + kh and
//   columns ow*stride - padding + kw (kh, kw < kernel; those inside the image), OH = (H + 2 padding -
//   kernel) / stride + 1, likewise OW.
// The window's maximum is torch's max pool's: visited row by row, a value replaces the maximum when
// it is greater or nan; index = h * W + w of the position kept (the first valid one when none is).
// out and index are NCHW-contiguous [N, C, OH, OW]; the batch norm's output is never stored.
// Backward, with g' = g where out > 0 (the ReLU's mask) scattered to the kept positions:
//   dbeta_c = sum g',  dgamma_c = invstd_c sum g' (x - mean_c),
//   dx = a_c g' + B_c x + C_c with B_c = -a_c invstd_c^2 sum g' (x - mean_c) / M,
//   C_c = -a_c dbeta_c / M - B_c mean_c;  dx channels_last like x.
// Sums are accumulated in float64 per block of rows and the blocks added in order; each image's
// scatter runs on one thread in output order: results do not depend on the thread count.
#pragma once
#include <cstdint>
#include <optional>

#include "core/check.h"
#include "nimbleops/view.h"
#include "vision/batch_norm_api.h"

namespace nimbleops {
namespace vision {

struct BatchNormPoolShape {
  int64_t N, C, H, W, OH, OW;
};

struct BatchNormPoolViews {
  View x;       // [N, C, H, W], channels_last-contiguous
  View weight;  // gamma [C]
  View bias;    // beta [C]
  double eps = 1e-5;
  int64_t kernel = 3, stride = 2, padding = 1;
  BatchNormPoolShape shape{};  // set by check_batch_norm_pool
  bool checked = false;        // the kernels take only checked views
};

// The one check of a call: shapes, dtypes, layout, devices and the pooling arguments.
void check_batch_norm_pool(BatchNormPoolViews& v);

namespace cpu {
// out [N, C, OH, OW] in x's dtype and index int32 of that shape, NCHW-contiguous; mean and invstd [C]
void batch_norm_pool_forward(const BatchNormPoolViews& v, const View& out, const View& index, const View& mean,
                             const View& invstd);
// grad_out, out, index: [N, C, OH, OW] NCHW-contiguous; grad_x channels_last like x; any gradient
// may be absent
void batch_norm_pool_backward(const BatchNormPoolViews& v, const View& grad_out, const View& out, const View& index,
                              const View& mean, const View& invstd, const std::optional<View>& grad_x,
                              const std::optional<View>& grad_w, const std::optional<View>& grad_b);
}  // namespace cpu

}  // namespace vision
}  // namespace nimbleops
