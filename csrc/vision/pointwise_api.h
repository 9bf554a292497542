// Pointwise (1x1) convolution, grouped, with an optional fused ReLU and an optional channel
// shuffle of the output: out[n, pos(co), p] = act(bias[co] + sum_{ci in group(co)} W[co, ci'] x[n, ci, p])
// with pos(co) = (co % (Cout/s)) * s + co / (Cout/s) for shuffle_groups s (identity when s = 0),
// group(co) = co / (Cout/G). x, out and the gradients NCHW-contiguous (the Python wrapper converts
// channels_last); weight [Cout, Cin/G] contiguous.
#pragma once
#include <cstdint>
#include <optional>

#include "core/check.h"
#include "core/view.h"

namespace nimbleops {
namespace vision {

struct PointwiseShape {
  int64_t N, Cin, HW, Cout, Cin_g, Cout_g;
};

struct PointwiseViews {
  View x;                    // [N, Cin, H, W]
  View weight;               // [Cout, Cin/G]
  std::optional<View> bias;  // [Cout]
  int64_t groups = 1, shuffle_groups = 0;
  bool relu = false;
  uintptr_t stream = 0;
  PointwiseShape shape{};  // set by check_pointwise
  bool checked = false;  // the kernels take only checked views
};

// The one check of a call: shapes, dtypes, devices and sizes; stores the shape in v.
void check_pointwise(PointwiseViews& v);

// the output channel position of channel co
inline int64_t shuffled_position(int64_t co, int64_t Cout, int64_t s) {
  return s > 1 ? (co % (Cout / s)) * s + co / (Cout / s) : co;
}

namespace cpu {
void pointwise_forward(const PointwiseViews& v, const View& out);
// out: the forward's output (needed with relu); gradients may be absent
void pointwise_backward(const PointwiseViews& v, const View& grad_out, const std::optional<View>& out,
                        const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                        const std::optional<View>& grad_b);
}  // namespace cpu
namespace cuda {
void pointwise_forward(const PointwiseViews& v, const View& out);
void pointwise_backward(const PointwiseViews& v, const View& grad_out, const std::optional<View>& out,
                        const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                        const std::optional<View>& grad_b);
}  // namespace cuda

}  // namespace vision
}  // namespace nimbleops
