// Position-sensitive RoI align / pool: the per-RoI geometry shared by the CPU and CUDA kernels
// (the rules are stated in python/nimbleops/vision/ps_roi.py). Box coordinates, sample
// positions and bilinear weights are computed in double for every dtype, so the kernels and the
// float64 reference take the same branches; the values are accumulated in the input's dtype.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hd.h"
#include "nimbleops/enums.h"

namespace nimbleops {
namespace vision {

// scaled box coordinates beyond this magnitude count as infinite (that RoI gives zeros)
constexpr double kCoordLimit = 1099511627776.0;  // 2^40
// at most this many samples per bin with the adaptive grid (a larger box is a ValueError)
constexpr int64_t kMaxSamplesPerBin = int64_t(1) << 20;

// Everything a kernel needs about the call (element strides of the input).
template <class T>
struct PsRoiArgs {
  const T* input = nullptr;
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t sN = 0, sC = 0, sH = 0, sW = 0;
  const double* boxes = nullptr;  // [K, 5]
  int64_t K = 0;
  int64_t pooled_h = 1, pooled_w = 1, C_out = 0;
  double scale = 1.0;
  int64_t sampling_ratio = -1;
  bool aligned = true;
  PsRoiOp op = PsRoiOp::align_avg;
};

// One RoI's geometry. valid == false: a coordinate is not finite (or beyond kCoordLimit).
struct RoiGeometry {
  bool valid = false;
  int64_t n = 0;
  // align: start, bin size and sampling grid
  double y1 = 0, x1 = 0, bin_h = 0, bin_w = 0;
  int64_t grid_h = 1, grid_w = 1;
  // pool: rounded start and size (at least 1)
  int64_t ry1 = 0, rx1 = 0, roi_h = 1, roi_w = 1;
};

NIMBLEOPS_HD bool coord_ok(double v) { return v == v && v <= kCoordLimit && v >= -kCoordLimit; }

// C's round: half away from zero
NIMBLEOPS_HD int64_t round_half_away(double v) {
  return v >= 0 ? int64_t(floor(v + 0.5)) : -int64_t(floor(-v + 0.5));
}

NIMBLEOPS_HD int64_t ceil_positive(double v) {  // max(ceil(v), 1) for a finite v
  const double c = ceil(v);
  return c < 1.0 ? 1 : int64_t(c);
}

// The geometry of RoI `box` (5 doubles). The batch index is validated before the kernels run.
NIMBLEOPS_HD RoiGeometry roi_geometry(const double* box, int64_t pooled_h, int64_t pooled_w, double scale,
                                      int64_t sampling_ratio, bool aligned, bool pool) {
  RoiGeometry g;
  g.n = int64_t(box[0]);
  const double x1 = box[1] * scale, y1 = box[2] * scale, x2 = box[3] * scale, y2 = box[4] * scale;
  if (!(coord_ok(x1) && coord_ok(y1) && coord_ok(x2) && coord_ok(y2))) return g;
  g.valid = true;
  if (pool) {
    g.rx1 = round_half_away(x1);
    g.ry1 = round_half_away(y1);
    const int64_t w = round_half_away(x2) - g.rx1, h = round_half_away(y2) - g.ry1;
    g.roi_w = w < 1 ? 1 : w;
    g.roi_h = h < 1 ? 1 : h;
    return g;
  }
  const double offset = aligned ? 0.5 : 0.0;
  g.x1 = x1 - offset;
  g.y1 = y1 - offset;
  const double roi_w = (x2 - offset) - g.x1, roi_h = (y2 - offset) - g.y1;
  g.bin_h = roi_h / double(pooled_h);
  g.bin_w = roi_w / double(pooled_w);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : ceil_positive(roi_h / double(pooled_h));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : ceil_positive(roi_w / double(pooled_w));
  return g;
}

// One bilinear sample: four taps (plane offsets in elements, weights). count == 0: the sample
// lies more than one pixel outside the map and is 0. torchvision's border rules.
struct Taps {
  int count = 0;
  int64_t off[4];
  double w[4];
};

// The row (or column) part of a sample: low/high index and the fractional weight `l`.
struct Axis {
  bool inside = false;
  int64_t low = 0, high = 0;
  double l = 0;
};

NIMBLEOPS_HD Axis axis_taps(double v, int64_t size) {
  Axis a;
  if (v < -1.0 || v > double(size)) return a;
  a.inside = true;
  if (v <= 0) v = 0;
  a.low = int64_t(v);
  if (a.low >= size - 1) {
    a.low = a.high = size - 1;
    v = double(a.low);
  } else {
    a.high = a.low + 1;
  }
  a.l = v - double(a.low);
  return a;
}

NIMBLEOPS_HD Taps combine(const Axis& y, const Axis& x, int64_t sH, int64_t sW) {
  Taps t;
  if (!y.inside || !x.inside) return t;
  t.count = 4;
  const double hy = 1.0 - y.l, hx = 1.0 - x.l;
  t.off[0] = y.low * sH + x.low * sW;
  t.off[1] = y.low * sH + x.high * sW;
  t.off[2] = y.high * sH + x.low * sW;
  t.off[3] = y.high * sH + x.high * sW;
  t.w[0] = hy * hx;
  t.w[1] = hy * x.l;
  t.w[2] = y.l * hx;
  t.w[3] = y.l * x.l;
  return t;
}

// sample rows of bin row i / columns of bin column j
NIMBLEOPS_HD double sample_y(const RoiGeometry& g, int64_t i, int64_t iy) {
  return (double(i) * g.bin_h + g.y1) + (double(iy) + 0.5) * g.bin_h / double(g.grid_h);
}
NIMBLEOPS_HD double sample_x(const RoiGeometry& g, int64_t j, int64_t ix) {
  return (double(j) * g.bin_w + g.x1) + (double(ix) + 0.5) * g.bin_w / double(g.grid_w);
}

template <class T>
NIMBLEOPS_HD T tap_value(const T* plane, const Taps& t) {
  if (t.count == 0) return T(0);
  return T(t.w[0]) * plane[t.off[0]] + T(t.w[1]) * plane[t.off[1]] + T(t.w[2]) * plane[t.off[2]] +
         T(t.w[3]) * plane[t.off[3]];
}

// max over samples: the first maximum wins; a NaN wins (it propagates)
template <class T>
NIMBLEOPS_HD bool better(T v, T best) {
  return best == best && (v > best || v != v);
}

// Pool bin (i, j): [h0, h1) x [w0, w1), R-FCN's floor/ceil edges (exact integer arithmetic),
// clipped to [0, H] and [0, W].
struct PoolBin {
  int64_t h0, h1, w0, w1;
  NIMBLEOPS_HD bool empty() const { return h1 <= h0 || w1 <= w0; }
};

NIMBLEOPS_HD int64_t clip(int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

// [start, end) of bin i of `bins` over a RoI of `size` pixels starting at `origin`, clipped to [0, limit]
NIMBLEOPS_HD void pool_edges(int64_t i, int64_t bins, int64_t size, int64_t origin, int64_t limit, int64_t& start,
                             int64_t& end) {
  start = clip(i * size / bins + origin, limit);
  end = clip(((i + 1) * size + bins - 1) / bins + origin, limit);
}

NIMBLEOPS_HD PoolBin pool_bin(const RoiGeometry& g, int64_t i, int64_t j, int64_t pooled_h, int64_t pooled_w, int64_t H,
                              int64_t W) {
  PoolBin b;
  pool_edges(i, pooled_h, g.roi_h, g.ry1, H, b.h0, b.h1);
  pool_edges(j, pooled_w, g.roi_w, g.rx1, W, b.w0, b.w1);
  return b;
}

}  // namespace vision
}  // namespace nimbleops
