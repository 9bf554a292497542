// CPU position-sensitive RoI align / pool. Forward: OpenMP over RoIs; each RoI's sample rows and
// columns are computed once and each bin's bilinear taps once, then reused for the C_out
// channels that read that bin. Backward: deterministic without atomics: the work is split by
// (image, bin), and bin (i, j) of output channel c reads input channel (c*ph + i)*pw + j only,
// so each task owns its input channels and adds the RoIs of its image in RoI order.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "vision/ps_roi_api.h"

namespace nimbleops {
namespace vision {

void check_boxes(const double* boxes, int64_t K, int64_t N, const PsRoiViews& v) {
  for (int64_t k = 0; k < K; ++k) {
    const double b = boxes[k * 5];
    NIMBLEOPS_CHECK(b >= 0 && b < double(N) && b == std::floor(b), "boxes: the batch index of RoI ", k,
                    " must be an integer in [0, ", N, "), got ", b);
    if (v.op == PsRoiOp::pool || v.sampling_ratio > 0) continue;
    const RoiGeometry g = roi_geometry(boxes + k * 5, v.ph, v.pw, v.scale, v.sampling_ratio, v.aligned, false);
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
  PsRoiArgs<T> a;
  a.C_out = validate_ps_roi(v);
  NIMBLEOPS_CHECK(v.input.device < 0 && v.boxes.device < 0, "input: expected CPU arrays for the CPU kernels");
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
  check_boxes(a.boxes, a.K, a.N, v);
  return a;
}

// The sample rows of every bin row and columns of every bin column of one RoI, and the taps of
// one bin (cached up to kCache samples, else built on the fly).
struct Samples {
  static constexpr int64_t kCache = 1024;
  std::vector<Axis> rows, cols;  // [ph * grid_h], [pw * grid_w]
  std::vector<Taps> taps;
  int64_t grid_h = 1, grid_w = 1;
  bool cached = false;

  // every bin row and column of the RoI, or only bin row `only_i` and column `only_j`
  template <class T>
  void roi(const PsRoiArgs<T>& a, const RoiGeometry& g, int64_t only_i = -1, int64_t only_j = -1) {
    grid_h = g.grid_h;
    grid_w = g.grid_w;
    rows.resize(size_t(a.ph * grid_h));
    cols.resize(size_t(a.pw * grid_w));
    for (int64_t i = 0; i < a.ph; ++i)
      if (only_i < 0 || i == only_i)
        for (int64_t iy = 0; iy < grid_h; ++iy) rows[size_t(i * grid_h + iy)] = axis_taps(sample_y(g, i, iy), a.H);
    for (int64_t j = 0; j < a.pw; ++j)
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

template <class T>
void forward_roi(const PsRoiArgs<T>& a, int64_t k, T* out, Samples& smp) {
  const int64_t bins = a.ph * a.pw;
  const bool pool = a.op == PsRoiOp::pool;
  const RoiGeometry g = roi_geometry(a.boxes + k * 5, a.ph, a.pw, a.scale, a.sampling_ratio, a.aligned, pool);
  if (!g.valid) {
    std::memset(out, 0, sizeof(T) * size_t(a.C_out * bins));
    return;
  }
  const T* base = a.input + g.n * a.sN;
  if (pool) {
    for (int64_t i = 0; i < a.ph; ++i)
      for (int64_t j = 0; j < a.pw; ++j) {
        const PoolBin b = pool_bin(g, i, j, a.ph, a.pw, a.H, a.W);
        const T area = T((b.h1 - b.h0) * (b.w1 - b.w0));
        for (int64_t c = 0; c < a.C_out; ++c) {
          T sum = T(0);
          if (!b.empty()) {
            const T* plane = base + ((c * a.ph + i) * a.pw + j) * a.sC;
            for (int64_t h = b.h0; h < b.h1; ++h)
              for (int64_t w = b.w0; w < b.w1; ++w) sum += plane[h * a.sH + w * a.sW];
            sum /= area;
          }
          out[c * bins + i * a.pw + j] = sum;
        }
      }
    return;
  }
  smp.roi(a, g);
  const int64_t count = smp.count();
  for (int64_t i = 0; i < a.ph; ++i)
    for (int64_t j = 0; j < a.pw; ++j) {
      smp.bin(i, j, a.sH, a.sW);
      for (int64_t c = 0; c < a.C_out; ++c) {
        const T* plane = base + ((c * a.ph + i) * a.pw + j) * a.sC;
        T result;
        if (a.op == PsRoiOp::align_avg) {
          T sum = T(0);
          for (int64_t s = 0; s < count; ++s) sum += tap_value(plane, smp.get(i, j, s, a.sH, a.sW));
          result = sum / T(count);
        } else {
          result = tap_value(plane, smp.get(i, j, 0, a.sH, a.sW));
          for (int64_t s = 1; s < count; ++s) {
            const T val = tap_value(plane, smp.get(i, j, s, a.sH, a.sW));
            if (better(val, result)) result = val;
          }
        }
        out[c * bins + i * a.pw + j] = result;
      }
    }
}

}  // namespace

void ps_roi_forward(const PsRoiViews& v, const View& out) {
  NIMBLEOPS_DISPATCH_FLOATING(v.input.dtype, "input", [&] {
    using T = scalar_t;
    const PsRoiArgs<T> a = make_args<T>(v);
    const int64_t per_roi = a.C_out * a.ph * a.pw;
    check_contiguous(out, "out");
    check_dtype(out, v.input.dtype, "out");
    check_numel(out, a.K * per_roi, "out");
    T* o = out.ptr<T>();
    parallel_for(a.K, 4, [&](int64_t k0, int64_t k1) {
      Samples smp;
      for (int64_t k = k0; k < k1; ++k) forward_roi(a, k, o + k * per_roi, smp);
    });
  });
}

void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in) {
  NIMBLEOPS_DISPATCH_FLOATING(v.input.dtype, "input", [&] {
    using T = scalar_t;
    const PsRoiArgs<T> a = make_args<T>(v);
    const int64_t bins = a.ph * a.pw, per_roi = a.C_out * bins, plane_size = a.H * a.W;
    check_contiguous(grad_out, "grad_output");
    check_dtype(grad_out, v.input.dtype, "grad_output");
    check_numel(grad_out, a.K * per_roi, "grad_output");
    check_contiguous(grad_in, "grad_input");
    check_dtype(grad_in, v.input.dtype, "grad_input");
    check_numel(grad_in, a.N * a.C * plane_size, "grad_input");
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
      Samples smp;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / bins, i = (t % bins) / a.pw, j = t % a.pw;
        T* gbase = gi + n * a.C * plane_size;
        const T* base = a.input + n * a.sN;
        for (int64_t r = start[size_t(n)]; r < start[size_t(n + 1)]; ++r) {
          const int64_t k = order[size_t(r)];
          const RoiGeometry g = roi_geometry(a.boxes + k * 5, a.ph, a.pw, a.scale, a.sampling_ratio, a.aligned, pool);
          if (!g.valid) continue;
          const T* gk = go + k * per_roi + i * a.pw + j;  // + c * bins
          if (pool) {
            const PoolBin b = pool_bin(g, i, j, a.ph, a.pw, a.H, a.W);
            if (b.empty()) continue;
            const T area = T((b.h1 - b.h0) * (b.w1 - b.w0));
            for (int64_t c = 0; c < a.C_out; ++c) {
              T* gplane = gbase + ((c * a.ph + i) * a.pw + j) * plane_size;
              const T share = gk[c * bins] / area;
              for (int64_t h = b.h0; h < b.h1; ++h)
                for (int64_t w = b.w0; w < b.w1; ++w) gplane[h * a.W + w] += share;
            }
            continue;
          }
          smp.roi(a, g, i, j);
          const int64_t count = smp.count();
          smp.bin(i, j, a.W, 1);  // taps in grad_input's contiguous layout
          for (int64_t c = 0; c < a.C_out; ++c) {
            const int64_t c_in = (c * a.ph + i) * a.pw + j;
            T* gplane = gbase + c_in * plane_size;
            auto add = [&](const Taps& tp, T share) {
              for (int q = 0; q < tp.count; ++q) gplane[tp.off[q]] += share * T(tp.w[q]);
            };
            if (a.op == PsRoiOp::align_avg) {
              const T share = gk[c * bins] / T(count);
              for (int64_t s = 0; s < count; ++s) add(smp.get(i, j, s, a.W, 1), share);
            } else {
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
              add(smp.get(i, j, best, a.W, 1), gk[c * bins]);
            }
          }
        }
      }
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
