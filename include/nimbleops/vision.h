// nimbleops C++ API, vision family: depthwise and pointwise convolutions, channel shuffles,
// ShuffleNetV2 stages and a stem's convolution + ReLU + max pool (inference), position-sensitive
// RoI align / pool and non-maximum suppression, on images [N, C, H, W].
//
// Arrays are nimbleops::View (nimbleops/view.h) over memory the caller owns; the floating arrays
// of a call share one dtype (float32 or float64) and one device (-1 = host; >= 0 = a CUDA
// device, on the `stream` given, 0 = the default stream). The Python functions of
// nimbleops.vision call these kernels after converting their arguments; here the caller hands
// over the layouts each function states. Errors: std::invalid_argument / std::out_of_range with
// the messages of the Python functions; a call that throws has written nothing. Device views run
// the CUDA kernels asynchronously on the stream; a library built without CUDA throws
// std::invalid_argument for them. CPU results are deterministic and do not depend on the thread
// count.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "nimbleops/enums.h"
#include "nimbleops/view.h"

namespace nimbleops {
namespace vision {

// ---- Depthwise convolution ---------------------------------------------------------------------
// Depthwise 2-d convolution (PyTorch's conv2d with groups = C and weight [C*m, 1, KH, KW]):
// out[n, c*m + j, oh, ow] = bias[c*m + j]
//     + sum_{kh, kw} w[c*m + j, kh, kw] * x[n, c, oh*sh - pad_h + kh*dh, ow*sw - pad_w + kw*dw]
// (zero outside the input). x is NCHW- or channels_last-contiguous, the
// weight a contiguous [C*m, 1, KH, KW] (or [C*m, KH*KW]), the bias [C*m], out [N, C*m, OH, OW]
// in x's memory format (OH = (H + 2 pad_h - dh (KH - 1) - 1) / sh + 1, likewise OW). CPU results are deterministic
// and do not depend on the thread count or SIMD level.
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

// out = depthwise(x) (the shape fields of v are filled in by the call's check).
void depthwise_conv2d(DepthwiseViews v, const View& out);
// The gradients of x, weight ([C*m, 1, KH, KW] or [C*m, KH*KW], like v.weight) and bias from
// grad_out; x and grad_out NCHW-contiguous here; any gradient may be absent.
void depthwise_conv2d_backward(DepthwiseViews v, const View& grad_out, const std::optional<View>& grad_x,
                               const std::optional<View>& grad_weight, const std::optional<View>& grad_bias);

// ---- Pointwise (1x1) convolution ---------------------------------------------------------------
// Pointwise (1x1) convolution, grouped, with an optional fused ReLU and an optional channel
// shuffle of the output: out[n, pos(co), p] = act(bias[co] + sum_{ci in group(co)} W[co, ci'] x[n, ci, p])
// with pos(co) = (co % (Cout/s)) * s + co / (Cout/s) for shuffle_groups s (identity when s = 0),
// group(co) = co / (Cout/G). x, out and the gradients NCHW-contiguous ; weight [Cout, Cin/G] contiguous.
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

// out [N, Cout, H, W] NCHW-contiguous.
void pointwise_conv2d(PointwiseViews v, const View& out);
// out: the forward's output (read for the ReLU mask when v.relu); any gradient may be absent.
void pointwise_conv2d_backward(PointwiseViews v, const View& grad_out, const std::optional<View>& out,
                               const std::optional<View>& grad_x, const std::optional<View>& grad_weight,
                               const std::optional<View>& grad_bias);

// ---- Channel shuffles --------------------------------------------------------------------------
// Channel shuffle and the ShuffleNetV2 unit's fused concat + shuffle + split, as one kernel: a
// channel gather. Output tensor o, channel j is a copy of input tensor src_tensor, channel
// src_channel; every tensor is [N, C_t, H, W] with the same N, H, W, dtype and memory format
// (NCHW-contiguous or channels_last-contiguous). A pure copy: results are exact.
// The ops are enum ChannelOp (nimbleops/enums.h).
struct ChannelGatherViews {
  ChannelOp op = ChannelOp::shuffle;
  int64_t groups = 1;  // shuffle
  std::vector<View> inputs, outputs;
  uintptr_t stream = 0;
};

void channel_gather(const ChannelGatherViews& v);
// out [N, C, H, W] = x with its channels shuffled in `groups` groups (torch's channel_shuffle):
// out[:, k*g + i] = x[:, i*(C/g) + k]; x and out in the same memory format.
void channel_shuffle(const View& x, const View& out, int64_t groups, uintptr_t stream = 0);

// ---- ShuffleNetV2 stage (inference) ------------------------------------------------------------
// A run of ShuffleNetV2 units with their batch norms folded into the convolutions (eval mode), in
// one call, without a concatenation, shuffle or split pass: the units read and write channel
// planes where they lie and only the last result is gathered into `out`. Each unit is
//   stride 1: x1, x2 = the first and second halves of its input's channels;
//             y = relu(pw2(dw(relu(pw1(x2))))), out = channel_shuffle(cat(x1, y), 2);
//   stride 2: y1 = relu(branch1_pw(branch1_dw(x))), y2 = relu(pw2(dw(relu(pw1(x))))),
//             out = channel_shuffle(cat(y1, y2), 2),
// with dw a depthwise KH x KW convolution (odd sizes, the unit's stride, padding (KH/2, KW/2)) and
// pw a 1x1 convolution, each with its optional bias. Shapes: pw weights [Cout, Cin] or
// [Cout, Cin, 1, 1], dw weights [C, 1, KH, KW] (depth multiplier 1), biases [Cout]; the output
// halves of a unit are equal (y has the input's half width at stride 1; y1 and y2 the same
// width at stride 2). x [N, C, H, W] and out NCHW-contiguous host arrays of one float dtype; out
// [N, C_last, H_last, W_last], not overlapping x. Each output element is computed with the
// unfused composition's arithmetic (the pointwise and depthwise kernels above): equal to it bit
// for bit.
struct ShuffleUnitViews {
  int64_t stride = 1;
  std::optional<View> branch1_dw_weight, branch1_dw_bias, branch1_pw_weight, branch1_pw_bias;  // stride 2
  View pw1_weight, dw_weight, pw2_weight;
  std::optional<View> pw1_bias, dw_bias, pw2_bias;
};

// The output shape [N, C, H, W] of the units on x (checks every shape, dtype and device).
std::vector<int64_t> shufflenet_stage_shape(const View& x, const std::vector<ShuffleUnitViews>& units);
void shufflenet_stage(const View& x, const std::vector<ShuffleUnitViews>& units, const View& out);

// ---- Convolution + ReLU + max pool (inference) -------------------------------------------------
// A stem's head in one op (ShuffleNet's / ResNet's conv1 -> ReLU -> max pool, batch norm folded):
// out = max_pool(relu(conv2d(x, weight, bias, stride, padding)), pool_kernel_size, pool_stride,
// pool_padding), a dense convolution (groups 1, dilation 1) and torch's max pool (floor mode; a
// value replaces a window's maximum when it is greater or nan, and relu keeps a nan: nan
// propagates as in torch). x [N, Cin, H, W] and out [N, Cout, PH, PW] NCHW-contiguous host
// arrays, weight [Cout, Cin, KH, KW] contiguous, bias [Cout] or none; conv OH = (H + 2 padding -
// KH) / stride + 1 (likewise OW), PH = (OH + 2 pool_padding - pool_kernel_size) / pool_stride
// + 1 (likewise PW), pool_padding <= pool_kernel_size / 2. The convolution's output is never
// stored whole: its rows are computed per block of pooled rows. Each output sums its taps in
// (ci, kh, kw) order, contracted to FMA where the level has it (the last bits may differ between
// SIMD levels, never between runs or thread counts).
struct ConvPoolViews {
  View x;                    // [N, Cin, H, W]
  View weight;               // [Cout, Cin, KH, KW]
  std::optional<View> bias;  // [Cout]
  int64_t stride = 1, padding = 0, pool_kernel_size = 3, pool_stride = 2, pool_padding = 1;
};

// The output shape [N, Cout, PH, PW] (checks every argument).
std::vector<int64_t> conv2d_relu_max_pool_shape(const ConvPoolViews& v);
void conv2d_relu_max_pool(const ConvPoolViews& v, const View& out);

// ---- Position-sensitive RoI align / pool -------------------------------------------------------
// input [N, C, H, W] (any strides), C = C_out * pooled_h * pooled_w; boxes [K, 5] float64
// contiguous, rows (batch index, x1, y1, x2, y2) in input pixels before spatial_scale; out [K,
// C_out, pooled_h, pooled_w] contiguous: bin (i, j) of channel c reads input channel
// (c * pooled_h + i) * pooled_w + j. Align (R-FCN / Light-Head, torchvision's ps_roi_align):
// sampling_ratio samples per bin side (> 0), or the adaptive ceil(roi / pooled) (-1); bilinear
// samples averaged (align_avg) or their maximum (align_max); aligned shifts the box by half a
// pixel. Pool (torchvision's ps_roi_pool): the average over the integer cells of each bin. A box
// with a nan or infinite coordinate gives zeros; a batch index that is not an integer in [0, N) is
// an error.
// One call's arguments, checked once by ps_roi_inputs (the one entry point that builds them);
// the kernels trust a PsRoiViews they are given.
struct PsRoiViews {
  PsRoiOp op = PsRoiOp::align_avg;
  View input;  // [N, C, H, W]
  View boxes;  // [K, 5] float64
  int64_t pooled_h = 1, pooled_w = 1;
  int64_t C_out = 0;  // C / (pooled_h * pooled_w)
  double scale = 1.0;
  int64_t sampling_ratio = -1;
  bool aligned = true;
  bool deterministic = true;  // CUDA backward: no atomics (the CPU is always deterministic)
  uintptr_t stream = 0;       // CUDA: the caller's stream
};

// The checked description of one call: shapes, dtypes, devices and the scalar arguments.
PsRoiViews ps_roi_inputs(PsRoiOp op, const View& input, const View& boxes, int64_t pooled_h, int64_t pooled_w,
                         double spatial_scale, int64_t sampling_ratio, bool aligned, bool deterministic,
                         uintptr_t stream);

// The boxes' values, read from host memory holding v.boxes (v.boxes itself, or a host copy of
// CUDA boxes): every batch index an integer in [0, N); with the adaptive grid, at most
// kMaxSamplesPerBin samples per bin.
void check_boxes(const PsRoiViews& v, const double* boxes);
// out = the op of v (host boxes are checked by check_boxes in the call; for device boxes, call
// check_boxes with a host copy first).
void ps_roi(const PsRoiViews& v, const View& out);
// grad_input [N, C, H, W] contiguous, overwritten; deterministic on the CPU, and on CUDA when
// v.deterministic (atomics otherwise).
void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_input);

// ---- Non-maximum suppression -------------------------------------------------------------------
// Greedy NMS, torchvision's nms (and batched_nms with groups): boxes [K, 4] (x1, y1, x2, y2) and
// scores [K] of one float dtype, contiguous, on the host; groups [K] int64 (optional: boxes of
// different groups never suppress each other). The boxes are visited by decreasing score (ties in
// index order, nan scores first, as torch's stable descending sort); a box not yet suppressed is
// kept and suppresses every later box of its group whose IoU with it,
// inter / (area_i + area_j - inter), is above iou_threshold. Areas are (x2 - x1) (y2 - y1), and
// every step is torchvision's arithmetic in the boxes' dtype, so the kept set is the same bit for
// bit (torchvision's batched_nms on fewer than 4000 values shifts the boxes by a per-class offset
// first, which may round an IoU near the threshold differently). Boxes are not checked for
// x1 <= x2 (torchvision does not check either); a nan IoU suppresses nothing. keep: contiguous
// int64 with room for K; receives the kept indices in visiting order; returns how many, at most
// max_output when max_output >= 0. One thread: the visit is sequential.
int64_t nms(const View& boxes, const View& scores, const std::optional<View>& groups, double iou_threshold,
            int64_t max_output, const View& keep);

}  // namespace vision
}  // namespace nimbleops
