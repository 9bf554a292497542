// Depthwise 2-d convolution (PyTorch's conv2d with groups = C and weight [C*m, 1, KH, KW]):
// out[n, c*m + j, oh, ow] = bias[c*m + j]
//     + sum_{kh, kw} w[c*m + j, kh, kw] * x[n, c, oh*sh - pad_h + kh*dh, ow*sw - pad_w + kw*dw]
// (zero outside the input). The Python wrapper hands over x NCHW- or channels_last-contiguous,
// the weight as a contiguous [C*m, KH*KW] and the bias as [C*m]. CPU results are deterministic
// and do not depend on the thread count or SIMD level.
#pragma once
#include <cstdint>
#include <optional>

#include "core/check.h"
#include "core/view.h"

namespace nimbleops {
namespace vision {

struct DepthwiseShape {
  int64_t N, C, H, W, m, Cout, OH, OW;
  bool channels_last;
};

struct DepthwiseViews {
  View x;                   // [N, C, H, W]
  View weight;              // [C*m, KH*KW]
  std::optional<View> bias;  // [C*m]
  int64_t KH = 1, KW = 1, sh = 1, sw = 1, pad_h = 0, pad_w = 0, dh = 1, dw = 1;
  uintptr_t stream = 0;
  DepthwiseShape shape{};  // set by check_depthwise
  bool checked = false;  // the kernels take only checked views
};

// The one check of a call: shapes, dtypes, devices and sizes; stores the shape in v.
void check_depthwise(DepthwiseViews& v);

namespace cpu {
void depthwise_forward(const DepthwiseViews& v, const View& out);
// x and grad_out NCHW-contiguous; any of the gradients may be absent
void depthwise_backward(const DepthwiseViews& v, const View& grad_out, const std::optional<View>& grad_x,
                        const std::optional<View>& grad_w, const std::optional<View>& grad_b);
}  // namespace cpu
namespace cuda {
void depthwise_forward(const DepthwiseViews& v, const View& out);
void depthwise_backward(const DepthwiseViews& v, const View& grad_out, const std::optional<View>& grad_x,
                        const std::optional<View>& grad_w, const std::optional<View>& grad_b);
}  // namespace cuda

}  // namespace vision
}  // namespace nimbleops
