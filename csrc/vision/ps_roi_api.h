// Entry points of the position-sensitive RoI ops (align avg/max, pool), one set per device.
// The Python wrapper hands over boxes as a contiguous float64 [K, 5] array on the input's
// device; the input may have any strides (NCHW, channels_last, slices). Outputs are contiguous.
#pragma once
#include <cstdint>

#include "core/check.h"
#include "nimbleops/vision.h"
#include "vision/ps_roi.h"

namespace nimbleops {
namespace vision {

// The kernel arguments of a checked call.
template <class T>
PsRoiArgs<T> ps_roi_args(const PsRoiViews& v) {
  PsRoiArgs<T> a;
  a.C_out = v.C_out;
  a.input = v.input.ptr<T>();
  a.N = v.input.shape[0];
  a.C = v.input.shape[1];
  a.H = v.input.shape[2];
  a.W = v.input.shape[3];
  a.sN = v.input.strides[0];
  a.sC = v.input.strides[1];
  a.sH = v.input.strides[2];
  a.sW = v.input.strides[3];
  a.boxes = v.boxes.ptr<double>();
  a.K = v.boxes.shape[0];
  a.pooled_h = v.pooled_h;
  a.pooled_w = v.pooled_w;
  a.scale = v.scale;
  a.sampling_ratio = v.sampling_ratio;
  a.aligned = v.aligned;
  a.op = v.op;
  return a;
}

namespace cpu {
void ps_roi_forward(const PsRoiViews& v, const View& out);  // out [K, C_out, pooled_h, pooled_w]
void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in);  // grad_in [N, C, H, W]
}  // namespace cpu

namespace cuda {
void ps_roi_forward(const PsRoiViews& v, const View& out);
void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in);
}  // namespace cuda

}  // namespace vision
}  // namespace nimbleops
