// Pointwise convolution: the one check and the per-device entry points (semantics in
// nimbleops/vision.h, beside PointwiseViews).
#pragma once
#include <cstdint>
#include <optional>

#include "core/check.h"
#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {

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
