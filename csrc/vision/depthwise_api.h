// Depthwise convolution: the one check and the per-device entry points (semantics in
// nimbleops/vision.h, beside DepthwiseViews).
#pragma once
#include <cstdint>
#include <optional>

#include "core/check.h"
#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {

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
