// Entry points of the position-sensitive RoI ops (align avg/max, pool), one set per device.
// The Python wrapper hands over boxes as a contiguous float64 [K, 5] array on the input's
// device; the input may have any strides (NCHW, channels_last, slices). Outputs are contiguous.
#pragma once
#include <cstdint>

#include "core/check.h"
#include "core/view.h"
#include "vision/ps_roi.h"

namespace nimbleops {
namespace vision {

struct PsRoiViews {
  PsRoiOp op = PsRoiOp::align_avg;
  View input;  // [N, C, H, W]
  View boxes;  // [K, 5] float64
  int64_t ph = 1, pw = 1;
  double scale = 1.0;
  int64_t sampling_ratio = -1;
  bool aligned = true;
  bool deterministic = true;  // CUDA backward: no atomics (the CPU is always deterministic)
  uintptr_t stream = 0;       // CUDA: the caller's stream
};

// Shapes, dtypes and devices; returns C_out.
inline int64_t validate_ps_roi(const PsRoiViews& v) {
  NIMBLEOPS_CHECK(v.input.ndim() == 4, "input: expected [N, C, H, W], got shape ", shape_str(v.input));
  NIMBLEOPS_CHECK(v.input.dtype == DType::float32 || v.input.dtype == DType::float64,
                  "input: expected float32 or float64, got ", dtype_name(v.input.dtype));
  NIMBLEOPS_CHECK(v.ph >= 1 && v.pw >= 1 && v.ph <= 4096 && v.pw <= 4096,
                  "output_size: expected positive sizes up to 4096, got (", v.ph, ", ", v.pw, ")");
  const int64_t C = v.input.shape[1];
  NIMBLEOPS_CHECK(C % (v.ph * v.pw) == 0, "input: expected channels divisible by ph * pw = ", v.ph * v.pw, ", got ",
                  C);
  NIMBLEOPS_CHECK(v.input.shape[2] >= 1 && v.input.shape[3] >= 1, "input: expected a non-empty map, got shape ",
                  shape_str(v.input));
  NIMBLEOPS_CHECK(v.boxes.ndim() == 2 && v.boxes.shape[1] == 5, "boxes: expected [K, 5], got shape ",
                  shape_str(v.boxes));
  check_contiguous(v.boxes, "boxes");
  check_dtype(v.boxes, DType::float64, "boxes");
  check_same_device(v.boxes, v.input, "boxes", "input");
  NIMBLEOPS_CHECK(v.scale > 0 && std::isfinite(v.scale), "spatial_scale: expected a positive finite number, got ",
                  v.scale);
  NIMBLEOPS_CHECK(v.sampling_ratio <= 1024, "sampling_ratio: expected at most 1024, got ", v.sampling_ratio);
  return C / (v.ph * v.pw);
}

// The kernel arguments of a validated call (the CPU kernels also run check_boxes on them).
template <class T>
PsRoiArgs<T> ps_roi_args(const PsRoiViews& v) {
  PsRoiArgs<T> a;
  a.C_out = validate_ps_roi(v);
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
  a.ph = v.ph;
  a.pw = v.pw;
  a.scale = v.scale;
  a.sampling_ratio = v.sampling_ratio;
  a.aligned = v.aligned;
  a.op = v.op;
  return a;
}

// Host boxes [K, 5]: every batch index an integer in [0, N); with the adaptive grid, at most
// kMaxSamplesPerBin samples per bin.
void check_boxes(const double* boxes, int64_t K, int64_t N, const PsRoiViews& v);

namespace cpu {
void ps_roi_forward(const PsRoiViews& v, const View& out);  // out [K, C_out, ph, pw]
void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in);  // grad_in [N, C, H, W]
}  // namespace cpu

namespace cuda {
void ps_roi_forward(const PsRoiViews& v, const View& out);
void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in);
}  // namespace cuda

}  // namespace vision
}  // namespace nimbleops
