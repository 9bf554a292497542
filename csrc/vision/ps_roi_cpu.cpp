// CPU position-sensitive RoI align / pool. Forward: OpenMP over RoIs; each RoI's sample rows and
// columns are computed once and each bin's bilinear taps once, then reused for the C_out
// channels that read that bin. Backward: deterministic without atomics: the work is split by
// (image, bin), and bin (i, j) of output channel c reads input channel (c*pooled_h + i)*pooled_w + j only,
// so each task owns its input channels and adds the RoIs of its image in RoI order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "vision/ps_roi_api.h"

namespace nimbleops {
namespace vision {

PsRoiViews ps_roi_inputs(PsRoiOp op, const View& input, const View& boxes, int64_t pooled_h, int64_t pooled_w,
                         double spatial_scale, int64_t sampling_ratio, bool aligned, bool deterministic,
                         uintptr_t stream) {
  NIMBLEOPS_CHECK(input.ndim() == 4, "input: expected [N, C, H, W], got shape ", shape_str(input));
  NIMBLEOPS_CHECK(input.dtype == DType::float32 || input.dtype == DType::float64,
                  "input: expected float32 or float64, got ", dtype_name(input.dtype));
  NIMBLEOPS_CHECK(pooled_h >= 1 && pooled_w >= 1 && pooled_h <= 4096 && pooled_w <= 4096,
                  "output_size: expected positive sizes up to 4096, got (", pooled_h, ", ", pooled_w, ")");
  const int64_t C = input.shape[1];
  NIMBLEOPS_CHECK(C % (pooled_h * pooled_w) == 0, "input: expected channels divisible by pooled_h * pooled_w = ",
                  pooled_h * pooled_w, " (C = C_out * pooled_h * pooled_w), got ", C);
  NIMBLEOPS_CHECK(input.shape[2] >= 1 && input.shape[3] >= 1, "input: expected a non-empty map, got shape ",
                  shape_str(input));
  NIMBLEOPS_CHECK(boxes.ndim() == 2 && boxes.shape[1] == 5, "boxes: expected [K, 5], got shape ", shape_str(boxes));
  check_contiguous(boxes, "boxes");
  check_dtype(boxes, DType::float64, "boxes");
  check_same_device(boxes, input, "boxes", "input");
  NIMBLEOPS_CHECK(spatial_scale > 0 && std::isfinite(spatial_scale),
                  "spatial_scale: expected a positive finite number, got ", spatial_scale);
  NIMBLEOPS_CHECK(sampling_ratio <= 1024, "sampling_ratio: expected at most 1024 samples per side, got ",
                  sampling_ratio);
  PsRoiViews v;
  v.op = op;
  v.input = input;
  v.boxes = boxes;
  v.pooled_h = pooled_h;
  v.pooled_w = pooled_w;
  v.C_out = C / (pooled_h * pooled_w);
  v.scale = spatial_scale;
  v.sampling_ratio = sampling_ratio;
  v.aligned = aligned;
  v.deterministic = deterministic;
  v.stream = stream;
  return v;
}

void check_boxes(const PsRoiViews& v, const double* boxes) {
  const int64_t K = v.boxes.shape[0], N = v.input.shape[0];
  for (int64_t k = 0; k < K; ++k) {
    const double b = boxes[k * 5];
    NIMBLEOPS_CHECK(b >= 0 && b < double(N) && b == std::floor(b), "boxes: the batch index of RoI ", k,
                    " must be an integer in [0, ", N, "), got ", b);
    if (v.op == PsRoiOp::pool || v.sampling_ratio > 0) continue;
    const RoiGeometry g =
        roi_geometry(boxes + k * 5, v.pooled_h, v.pooled_w, v.scale, v.sampling_ratio, v.aligned, false);
    NIMBLEOPS_CHECK(!g.valid || (g.grid_h <= kMaxSamplesPerBin && g.grid_w <= kMaxSamplesPerBin &&
                                 g.grid_h * g.grid_w <= kMaxSamplesPerBin),
                    "boxes: RoI ", k, " needs an adaptive sampling grid of ", g.grid_h, " x ", g.grid_w,
                    " samples per bin (at most ", kMaxSamplesPerBin, "); pass sampling_ratio > 0");
  }
}

namespace cpu {
namespace {

template <class T>
PsRoiArgs<T> make_args(const PsRoiViews& v) {
  NIMBLEOPS_CHECK(v.input.device < 0 && v.boxes.device < 0, "input: expected CPU arrays for the CPU kernels");
  const PsRoiArgs<T> a = ps_roi_args<T>(v);
  check_boxes(v, a.boxes);
  return a;
}

// The sample rows of every bin row and columns of every bin column of one RoI, and the taps of
// one bin (cached up to kCache samples, else built on the fly).
struct Samples {
  static constexpr int64_t kCache = 1024;
  std::vector<Axis> rows, cols;  // [pooled_h * grid_h], [pooled_w * grid_w]
  std::vector<Taps> taps;
  int64_t grid_h = 1, grid_w = 1;
  bool cached = false;

  // every bin row and column of the RoI, or only bin row `only_i` and column `only_j`
  template <class T>
  void roi(const PsRoiArgs<T>& a, const RoiGeometry& g, int64_t only_i = -1, int64_t only_j = -1) {
    grid_h = g.grid_h;
    grid_w = g.grid_w;
    rows.resize(size_t(a.pooled_h * grid_h));
    cols.resize(size_t(a.pooled_w * grid_w));
    for (int64_t i = 0; i < a.pooled_h; ++i)
      if (only_i < 0 || i == only_i)
        for (int64_t iy = 0; iy < grid_h; ++iy) rows[size_t(i * grid_h + iy)] = axis_taps(sample_y(g, i, iy), a.H);
    for (int64_t j = 0; j < a.pooled_w; ++j)
      if (only_j < 0 || j == only_j)
        for (int64_t ix = 0; ix < grid_w; ++ix) cols[size_t(j * grid_w + ix)] = axis_taps(sample_x(g, j, ix), a.W);
  }
  int64_t count() const { return grid_h * grid_w; }
  // the taps of sample s of bin (i, j) for a plane with strides (sH, sW)
  Taps at(int64_t i, int64_t j, int64_t s, int64_t sH, int64_t sW) const {
    return combine(rows[size_t(i * grid_h + s / grid_w)], cols[size_t(j * grid_w + s % grid_w)], sH, sW);
  }
  void bin(int64_t i, int64_t j, int64_t sH, int64_t sW) {
    cached = count() <= kCache;
    if (!cached) return;
    taps.resize(size_t(count()));
    for (int64_t s = 0; s < count(); ++s) taps[size_t(s)] = at(i, j, s, sH, sW);
  }
  Taps get(int64_t i, int64_t j, int64_t s, int64_t sH, int64_t sW) const {
    return cached ? taps[size_t(s)] : at(i, j, s, sH, sW);
  }
};

// The mean over a bin's sampling grid is separable: sample (iy, ix) is the product of a row part
// and a column part (bilinear weights, and the rule that a sample more than one pixel outside is
// 0), so mean = sum over rows r and columns q of wy[r] * wx[q] * plane[r, q], with wy the row
// weights of the grid rows merged per pixel row (each / grid_h) and wx likewise. A bin of a
// 2 x 2 grid then reads 4 to 9 pixels instead of 16 taps. Axis i's merged taps are
// [start[i], start[i + 1]) of index / weight.
struct MergedAxis {
  std::vector<int64_t> start, index;
  std::vector<double> weight;
  int64_t used = 0;

  template <class Position>
  void build(int64_t bins, int64_t grid, int64_t size, Position position, int64_t only = -1) {
    grow(start, bins + 1);
    grow(index, bins * 2 * grid);  // at most two pixels per sample
    grow(weight, bins * 2 * grid);
    used = 0;
    start[0] = 0;
    for (int64_t b = 0; b < bins; ++b) {
      if (only < 0 || b == only)
        for (int64_t s = 0; s < grid; ++s) {
          const Axis ax = axis_taps(position(b, s), size);
          if (!ax.inside) continue;
          add(start[size_t(b)], ax.low, (1.0 - ax.l) / double(grid));
          add(start[size_t(b)], ax.high, ax.l / double(grid));
        }
      start[size_t(b + 1)] = used;
    }
  }
  // adds weight w to pixel i of the bin whose entries begin at `first` (a new entry the first time)
  void add(int64_t first, int64_t i, double w) {
    for (int64_t e = first; e < used; ++e)
      if (index[size_t(e)] == i) {
        weight[size_t(e)] += w;
        return;
      }
    index[size_t(used)] = i;
    weight[size_t(used)] = w;
    ++used;
  }
  template <class V>
  static void grow(V& v, int64_t n) {
    if (int64_t(v.size()) < n) v.resize(size_t(n));
  }
};

// The pixels (offsets for strides sH, sW) and weights of bin (i, j), the mean folded in.
template <class T>
struct BinTaps {
  std::vector<int64_t> off;
  std::vector<T> w;
  size_t size = 0;
  void build(const MergedAxis& rows, const MergedAxis& cols, int64_t i, int64_t j, int64_t sH, int64_t sW) {
    const int64_t r0 = rows.start[size_t(i)], r1 = rows.start[size_t(i + 1)];
    const int64_t q0 = cols.start[size_t(j)], q1 = cols.start[size_t(j + 1)];
    size = size_t((r1 - r0) * (q1 - q0));
    if (off.size() < size) {
      off.resize(size);
      w.resize(size);
    }
    size_t t = 0;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t q = q0; q < q1; ++q, ++t) {
        off[t] = rows.index[size_t(r)] * sH + cols.index[size_t(q)] * sW;
        w[t] = T(rows.weight[size_t(r)] * cols.weight[size_t(q)]);
      }
  }
};

// The taps of every bin of one RoI (bin b: [start[b], start[b + 1])), built before any pixel is
// read, so the loads of the next bins can be issued (prefetched) while this one is summed.
template <class T>
struct RoiTaps {
  std::vector<int64_t> start, off;
  std::vector<T> w;
  void build(const MergedAxis& rows, const MergedAxis& cols, int64_t pooled_h, int64_t pooled_w, int64_t sH, int64_t sW) {
    MergedAxis::grow(start, pooled_h * pooled_w + 1);
    MergedAxis::grow(off, rows.used * cols.used);  // every bin row's pixels times every bin column's
    MergedAxis::grow(w, rows.used * cols.used);
    int64_t t = 0;
    start[0] = 0;
    for (int64_t i = 0; i < pooled_h; ++i)
      for (int64_t j = 0; j < pooled_w; ++j) {
        for (int64_t r = rows.start[size_t(i)]; r < rows.start[size_t(i + 1)]; ++r) {
          const int64_t row_off = rows.index[size_t(r)] * sH;
          const double wr = rows.weight[size_t(r)];
          for (int64_t q = cols.start[size_t(j)]; q < cols.start[size_t(j + 1)]; ++q, ++t) {
            off[size_t(t)] = row_off + cols.index[size_t(q)] * sW;
            w[size_t(t)] = T(wr * cols.weight[size_t(q)]);
          }
        }
        start[size_t(i * pooled_w + j + 1)] = t;
      }
  }
};

// The outputs of up to kBlock channels at once (independent sums, so the adds pipeline): plane q
// of a block is base + q * step; body(lanes, planes, acc) fills acc[0, lanes) with lanes a
// compile-time constant. Every channel sums its terms in the same order as it would alone. The
// accumulators are double at both precisions: a float sum drifts once a bin holds millions of
// samples (a constant 1.3 map pooled over 8192 x 8192 pixels would average to 0.5).
constexpr int kBlock = 8;

template <int B, class T, class Body>
inline void channel_block(const T* base, int64_t step, T* out, int64_t out_step, Body& body) {
  const T* planes[B];
  double acc[B];
  for (int q = 0; q < B; ++q) planes[q] = base + q * step;
  body(std::integral_constant<int, B>{}, planes, acc);
  for (int q = 0; q < B; ++q) out[q * out_step] = T(acc[q]);
}

template <class T, class Body>
inline void over_channel_blocks(const T* base, int64_t step, int64_t channels, T* out, int64_t out_step, Body&& body) {
  for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
    const T* b = base + c0 * step;
    T* o = out + c0 * out_step;
    switch (channels - c0 < kBlock ? channels - c0 : kBlock) {
      case 1: channel_block<1>(b, step, o, out_step, body); break;
      case 2: channel_block<2>(b, step, o, out_step, body); break;
      case 3: channel_block<3>(b, step, o, out_step, body); break;
      case 4: channel_block<4>(b, step, o, out_step, body); break;
      case 5: channel_block<5>(b, step, o, out_step, body); break;
      case 6: channel_block<6>(b, step, o, out_step, body); break;
      case 7: channel_block<7>(b, step, o, out_step, body); break;
      default: channel_block<8>(b, step, o, out_step, body); break;
    }
  }
}

// Per-thread scratch for one RoI.
template <class T>
struct Scratch {
  Samples samples;
  MergedAxis rows, cols;
  BinTaps<T> taps;
  RoiTaps<T> roi_taps;
  std::vector<int64_t> h0, h1, w0, w1;  // pool bin edges

  void merged(const PsRoiArgs<T>& a, const RoiGeometry& g, int64_t only_i = -1, int64_t only_j = -1) {
    rows.build(a.pooled_h, g.grid_h, a.H, [&](int64_t i, int64_t iy) { return sample_y(g, i, iy); }, only_i);
    cols.build(a.pooled_w, g.grid_w, a.W, [&](int64_t j, int64_t ix) { return sample_x(g, j, ix); }, only_j);
  }
  void pool_bins(const PsRoiArgs<T>& a, const RoiGeometry& g) {
    h0.resize(size_t(a.pooled_h));
    h1.resize(size_t(a.pooled_h));
    w0.resize(size_t(a.pooled_w));
    w1.resize(size_t(a.pooled_w));
    for (int64_t i = 0; i < a.pooled_h; ++i) vision::pool_edges(i, a.pooled_h, g.roi_h, g.ry1, a.H, h0[size_t(i)], h1[size_t(i)]);
    for (int64_t j = 0; j < a.pooled_w; ++j) vision::pool_edges(j, a.pooled_w, g.roi_w, g.rx1, a.W, w0[size_t(j)], w1[size_t(j)]);
  }
};

template <class T>
void forward_roi(const PsRoiArgs<T>& a, int64_t k, T* out, Scratch<T>& scratch) {
  const int64_t bins = a.pooled_h * a.pooled_w;
  const bool pool = a.op == PsRoiOp::pool;
  const RoiGeometry g = roi_geometry(a.boxes + k * 5, a.pooled_h, a.pooled_w, a.scale, a.sampling_ratio, a.aligned, pool);
  if (!g.valid) {
    std::memset(out, 0, sizeof(T) * size_t(a.C_out * bins));
    return;
  }
  const T* base = a.input + g.n * a.sN;
  const int64_t step = bins * a.sC;  // from output channel c to c + 1 in the input
  if (pool) {
    // Every bin of the RoI reads rows x cols pixels, the RoI's largest bin extents: a pixel past
    // a smaller bin's end re-reads the bin's last pixel and adds 0 (the same sum to the bit, as it
    // starts at +0). The loops then run one count for all the RoI's bins, and for extents up to
    // 3 x 3 (RoIs up to about 10 x 10 map pixels at 7 x 7 bins, as in the ThunderNet benchmark) a
    // compile-time count, unrolled, where looping over each bin's own 1-3 pixels would change its
    // count from bin to bin and defeat the unrolling.
    scratch.pool_bins(a, g);
    int64_t rows = 0, cols = 0;
    for (int64_t i = 0; i < a.pooled_h; ++i) rows = std::max(rows, scratch.h1[size_t(i)] - scratch.h0[size_t(i)]);
    for (int64_t j = 0; j < a.pooled_w; ++j) cols = std::max(cols, scratch.w1[size_t(j)] - scratch.w0[size_t(j)]);
    auto sum_bins = [&](auto R, auto Q) {
      constexpr int64_t kR = decltype(R)::value, kQ = decltype(Q)::value;
      const int64_t nr = kR > 0 ? kR : rows, nq = kQ > 0 ? kQ : cols;
      for (int64_t i = 0; i < a.pooled_h; ++i)
        for (int64_t j = 0; j < a.pooled_w; ++j) {
          const int64_t h0 = scratch.h0[size_t(i)], nh = scratch.h1[size_t(i)] - h0;
          const int64_t w0 = scratch.w0[size_t(j)], nw = scratch.w1[size_t(j)] - w0;
          const bool empty = nh <= 0 || nw <= 0;
          const double area = double(nh * nw);
          over_channel_blocks(base + (i * a.pooled_w + j) * a.sC, step, a.C_out, out + i * a.pooled_w + j, bins,
                              [&](auto lanes, const T* const* planes, double* acc) {
                                constexpr int B = decltype(lanes)::value;
                                for (int q = 0; q < B; ++q) acc[q] = 0.0;
                                if (empty) return;
                                for (int64_t dh = 0; dh < nr; ++dh) {
                                  // a row's sum, then the sum of rows: two short sums where one
                                  // long one would lose bits on bins of millions of pixels
                                  double row_sum[B];
                                  for (int q = 0; q < B; ++q) row_sum[q] = 0.0;
                                  const int64_t row = (h0 + std::min(dh, nh - 1)) * a.sH;
                                  for (int64_t dw = 0; dw < nq; ++dw) {
                                    const bool in = dh < nh && dw < nw;
                                    const int64_t o = row + (w0 + std::min(dw, nw - 1)) * a.sW;
                                    for (int q = 0; q < B; ++q) row_sum[q] += in ? double(planes[q][o]) : 0.0;
                                  }
                                  for (int q = 0; q < B; ++q) acc[q] += row_sum[q];
                                }
                                for (int q = 0; q < B; ++q) acc[q] /= area;
                              });
        }
    };
    // f(count as a compile-time constant) for counts 1-3; f(0: known at run time only) otherwise
    auto with_count = [](int64_t n, auto&& f) {
      switch (n) {
        case 1: return f(std::integral_constant<int64_t, 1>{});
        case 2: return f(std::integral_constant<int64_t, 2>{});
        case 3: return f(std::integral_constant<int64_t, 3>{});
        default: return f(std::integral_constant<int64_t, 0>{});
      }
    };
    return with_count(rows, [&](auto R) { with_count(cols, [&](auto Q) { sum_bins(R, Q); }); });
  }
  if (a.op == PsRoiOp::align_avg) {
    scratch.merged(a, g);
    RoiTaps<T>& taps = scratch.roi_taps;
    taps.build(scratch.rows, scratch.cols, a.pooled_h, a.pooled_w, a.sH, a.sW);
    constexpr int64_t ahead = 2;  // bins
    for (int64_t b = 0; b < bins; ++b) {
      if (b + ahead < bins) {
        const T* next = base + (b + ahead) * a.sC;
        for (int64_t t = taps.start[size_t(b + ahead)]; t < taps.start[size_t(b + ahead + 1)]; ++t)
          for (int64_t c = 0; c < a.C_out; ++c) __builtin_prefetch(next + c * step + taps.off[size_t(t)]);
      }
      const int64_t t0 = taps.start[size_t(b)], t1 = taps.start[size_t(b + 1)];
      over_channel_blocks(base + b * a.sC, step, a.C_out, out + b, bins,
                          [&](auto lanes, const T* const* planes, double* acc) {
        constexpr int B = decltype(lanes)::value;
        for (int q = 0; q < B; ++q) acc[q] = 0.0;
        for (int64_t t = t0; t < t1; ++t) {
          const double w = double(taps.w[size_t(t)]);
          const int64_t o = taps.off[size_t(t)];
          for (int q = 0; q < B; ++q) acc[q] += w * double(planes[q][o]);
        }
      });
    }
    return;
  }
  Samples& smp = scratch.samples;
  smp.roi(a, g);
  const int64_t count = smp.count();
  for (int64_t i = 0; i < a.pooled_h; ++i)
    for (int64_t j = 0; j < a.pooled_w; ++j) {
      smp.bin(i, j, a.sH, a.sW);
      over_channel_blocks(base + (i * a.pooled_w + j) * a.sC, step, a.C_out, out + i * a.pooled_w + j, bins,
                          [&](auto lanes, const T* const* planes, double* acc) {
                            constexpr int B = decltype(lanes)::value;
                            const Taps first = smp.get(i, j, 0, a.sH, a.sW);
                            for (int q = 0; q < B; ++q) acc[q] = double(tap_value(planes[q], first));
                            for (int64_t s = 1; s < count; ++s) {
                              const Taps tp = smp.get(i, j, s, a.sH, a.sW);
                              for (int q = 0; q < B; ++q) {
                                const double val = double(tap_value(planes[q], tp));  // exact: max only
                                if (better(val, acc[q])) acc[q] = val;
                              }
                            }
                          });
    }
}

}  // namespace

void ps_roi_forward(const PsRoiViews& v, const View& out) {
  NIMBLEOPS_DISPATCH_FLOATING(v.input.dtype, "input", [&] {
    using T = scalar_t;
    const PsRoiArgs<T> a = make_args<T>(v);
    const int64_t per_roi = a.C_out * a.pooled_h * a.pooled_w;
    check_like(out, v.input, "out", "input", a.K * per_roi, v.input.dtype);
    T* o = out.ptr<T>();
    parallel_for(a.K, 4, [&](int64_t k0, int64_t k1) {
      Scratch<T> scratch;
      for (int64_t k = k0; k < k1; ++k) forward_roi(a, k, o + k * per_roi, scratch);
    });
  });
}

void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in) {
  NIMBLEOPS_DISPATCH_FLOATING(v.input.dtype, "input", [&] {
    using T = scalar_t;
    const PsRoiArgs<T> a = make_args<T>(v);
    const int64_t bins = a.pooled_h * a.pooled_w, per_roi = a.C_out * bins, plane_size = a.H * a.W;
    check_like(grad_out, v.input, "grad_output", "input", a.K * per_roi, v.input.dtype);
    check_like(grad_in, v.input, "grad_input", "input", a.N * a.C * plane_size, v.input.dtype);
    const T* go = grad_out.ptr<T>();
    T* gi = grad_in.ptr<T>();
    parallel_for(a.N * a.C, 64, [&](int64_t p0, int64_t p1) {
      std::memset(gi + p0 * plane_size, 0, sizeof(T) * size_t((p1 - p0) * plane_size));
    });
    // the RoIs of each image, in RoI order (a stable counting sort)
    std::vector<int64_t> start(size_t(a.N + 1), 0), order(size_t(a.K));
    for (int64_t k = 0; k < a.K; ++k) ++start[size_t(a.boxes[k * 5]) + 1];
    for (int64_t n = 0; n < a.N; ++n) start[size_t(n + 1)] += start[size_t(n)];
    {
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t k = 0; k < a.K; ++k) order[size_t(fill[size_t(a.boxes[k * 5])]++)] = k;
    }
    const bool pool = a.op == PsRoiOp::pool;
    parallel_for(a.N * bins, 1, [&](int64_t t0, int64_t t1) {
      Scratch<T> scratch;
      Samples& smp = scratch.samples;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / bins, i = (t % bins) / a.pooled_w, j = t % a.pooled_w;
        T* gbase = gi + n * a.C * plane_size;
        const T* base = a.input + n * a.sN;
        for (int64_t r = start[size_t(n)]; r < start[size_t(n + 1)]; ++r) {
          const int64_t k = order[size_t(r)];
          const RoiGeometry g = roi_geometry(a.boxes + k * 5, a.pooled_h, a.pooled_w, a.scale, a.sampling_ratio, a.aligned, pool);
          if (!g.valid) continue;
          const T* gk = go + k * per_roi + i * a.pooled_w + j;  // + c * bins
          if (pool) {
            const PoolBin b = pool_bin(g, i, j, a.pooled_h, a.pooled_w, a.H, a.W);
            if (b.empty()) continue;
            const T area = T((b.h1 - b.h0) * (b.w1 - b.w0));
            for (int64_t c = 0; c < a.C_out; ++c) {
              T* gplane = gbase + ((c * a.pooled_h + i) * a.pooled_w + j) * plane_size;
              const T share = gk[c * bins] / area;
              for (int64_t h = b.h0; h < b.h1; ++h)
                for (int64_t w = b.w0; w < b.w1; ++w) gplane[h * a.W + w] += share;
            }
            continue;
          }
          if (a.op == PsRoiOp::align_avg) {
            scratch.merged(a, g, i, j);
            scratch.taps.build(scratch.rows, scratch.cols, i, j, a.W, 1);  // grad_input's contiguous layout
            const BinTaps<T>& taps = scratch.taps;
            for (int64_t c = 0; c < a.C_out; ++c) {
              T* gplane = gbase + ((c * a.pooled_h + i) * a.pooled_w + j) * plane_size;
              const T gv = gk[c * bins];
              for (size_t q = 0; q < taps.size; ++q) gplane[taps.off[q]] += gv * taps.w[q];
            }
            continue;
          }
          smp.roi(a, g, i, j);
          const int64_t count = smp.count();
          for (int64_t c = 0; c < a.C_out; ++c) {
            const int64_t c_in = (c * a.pooled_h + i) * a.pooled_w + j;
            const T* plane = base + c_in * a.sC;
            int64_t best = 0;
            T best_val = tap_value(plane, smp.at(i, j, 0, a.sH, a.sW));
            for (int64_t s = 1; s < count; ++s) {
              const T val = tap_value(plane, smp.at(i, j, s, a.sH, a.sW));
              if (better(val, best_val)) {
                best_val = val;
                best = s;
              }
            }
            const Taps tp = smp.at(i, j, best, a.W, 1);
            T* gplane = gbase + c_in * plane_size;
            for (int q = 0; q < tp.count; ++q) gplane[tp.off[q]] += gk[c * bins] * T(tp.w[q]);
          }
        }
      }
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
