// The public C++ API of the vision family (nimbleops/vision.h): each op's one check, then the CPU
// or CUDA entry point chosen by the arrays' device.
#include <string>

#include "core/check.h"
#include "core/on_device.h"
#include "vision/channel_shuffle_api.h"
#include "vision/conv_pool_api.h"
#include "vision/depthwise_api.h"
#include "vision/nms_api.h"
#include "vision/pointwise_api.h"
#include "vision/ps_roi_api.h"
#include "vision/shuffle_stage_api.h"

namespace nimbleops {
namespace vision {

void depthwise_conv2d(DepthwiseViews v, const View& out) {
  check_depthwise(v);
  NIMBLEOPS_ON_DEVICE(v.x.is_cuda(), "depthwise_conv2d", depthwise_forward(v, out));
}

void depthwise_conv2d_backward(DepthwiseViews v, const View& grad_out, const std::optional<View>& grad_x,
                               const std::optional<View>& grad_weight, const std::optional<View>& grad_bias) {
  check_depthwise(v);
  NIMBLEOPS_ON_DEVICE(v.x.is_cuda(), "depthwise_conv2d_backward",
                      depthwise_backward(v, grad_out, grad_x, grad_weight, grad_bias));
}

void pointwise_conv2d(PointwiseViews v, const View& out) {
  check_pointwise(v);
  NIMBLEOPS_ON_DEVICE(v.x.is_cuda(), "pointwise_conv2d", pointwise_forward(v, out));
}

void pointwise_conv2d_backward(PointwiseViews v, const View& grad_out, const std::optional<View>& out,
                               const std::optional<View>& grad_x, const std::optional<View>& grad_weight,
                               const std::optional<View>& grad_bias) {
  check_pointwise(v);
  NIMBLEOPS_ON_DEVICE(v.x.is_cuda(), "pointwise_conv2d_backward",
                      pointwise_backward(v, grad_out, out, grad_x, grad_weight, grad_bias));
}

void channel_gather(const ChannelGatherViews& v) {
  NIMBLEOPS_CHECK(!v.inputs.empty(), "inputs: expected at least one array");
  NIMBLEOPS_ON_DEVICE(v.inputs[0].is_cuda(), "channel_gather", channel_gather(v));
}

void channel_shuffle(const View& x, const View& out, int64_t groups, uintptr_t stream) {
  ChannelGatherViews v;
  v.op = ChannelOp::shuffle;
  v.groups = groups;
  v.inputs = {x};
  v.outputs = {out};
  v.stream = stream;
  channel_gather(v);
}

void ps_roi(const PsRoiViews& v, const View& out) {
  NIMBLEOPS_ON_DEVICE(v.input.is_cuda(), "ps_roi", ps_roi_forward(v, out));
}

void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_input) {
  NIMBLEOPS_ON_DEVICE(v.input.is_cuda(), "ps_roi_backward", ps_roi_backward(v, grad_out, grad_input));
}

std::vector<int64_t> shufflenet_stage_shape(const View& x, const std::vector<ShuffleUnitViews>& units) {
  return check_shufflenet_stage(x, units);
}

void shufflenet_stage(const View& x, const std::vector<ShuffleUnitViews>& units, const View& out) {
  cpu::shufflenet_stage(x, units, out);
}

std::vector<int64_t> conv2d_relu_max_pool_shape(const ConvPoolViews& v) { return check_conv_pool(v); }

void conv2d_relu_max_pool(const ConvPoolViews& v, const View& out) { cpu::conv2d_relu_max_pool(v, out); }

int64_t nms(const View& boxes, const View& scores, const std::optional<View>& groups, double iou_threshold,
            int64_t max_output, const View& keep) {
  return cpu::nms(boxes, scores, groups, iou_threshold, max_output, keep);
}

}  // namespace vision
}  // namespace nimbleops
