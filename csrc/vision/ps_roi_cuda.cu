// CUDA position-sensitive RoI align / pool with the geometry of vision/ps_roi.h. Forward: one
// thread per output element. Backward: by default one thread per output element adding into
// grad_input with atomics (the order of the additions, hence the last bits, varies from run to
// run); deterministic: one thread per grad_input element, summing the RoIs of its image in RoI
// order (for max mode the winning sample of every output is found first). The batch indices
// are validated on the host before launch (check_boxes); the kernels still skip a RoI whose
// index is out of range, so nothing is read or written out of bounds.
#include <cuda_runtime.h>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "vision/ps_roi_api.h"

namespace nimbleops {
namespace vision {
namespace cuda {
namespace {

template <class T>
__device__ bool roi_of(const PsRoiArgs<T>& a, int64_t k, RoiGeometry& g) {
  const double b = a.boxes[k * 5];
  if (!(b >= 0 && b < double(a.N))) return false;
  g = roi_geometry(a.boxes + k * 5, a.pooled_h, a.pooled_w, a.scale, a.sampling_ratio, a.aligned, a.op == PsRoiOp::pool);
  return g.valid;
}

template <class T>
__device__ Taps sample_taps(const PsRoiArgs<T>& a, const RoiGeometry& g, int64_t i, int64_t j, int64_t s,
                            int64_t sH, int64_t sW) {
  return combine(axis_taps(sample_y(g, i, s / g.grid_w), a.H), axis_taps(sample_x(g, j, s % g.grid_w), a.W), sH, sW);
}

// value of output (k, c, i, j) and, for max mode, the winning sample
template <class T>
__device__ T output_value(const PsRoiArgs<T>& a, int64_t k, int64_t c, int64_t i, int64_t j, int64_t* winner) {
  RoiGeometry g;
  if (winner) *winner = -1;
  if (!roi_of(a, k, g)) return T(0);
  const T* plane = a.input + g.n * a.sN + ((c * a.pooled_h + i) * a.pooled_w + j) * a.sC;
  if (a.op == PsRoiOp::pool) {
    const PoolBin b = pool_bin(g, i, j, a.pooled_h, a.pooled_w, a.H, a.W);
    if (b.empty()) return T(0);
    double sum = 0.0;  // double at both precisions, as on the CPU: a float sum drifts on large bins
    for (int64_t h = b.h0; h < b.h1; ++h) {
      double row = 0.0;  // a row's sum, then the sum of rows (as on the CPU)
      for (int64_t w = b.w0; w < b.w1; ++w) row += double(plane[h * a.sH + w * a.sW]);
      sum += row;
    }
    return T(sum / double((b.h1 - b.h0) * (b.w1 - b.w0)));
  }
  const int64_t count = g.grid_h * g.grid_w;
  if (a.op == PsRoiOp::align_avg) {
    double sum = 0.0;
    for (int64_t s = 0; s < count; ++s) sum += double(tap_value(plane, sample_taps(a, g, i, j, s, a.sH, a.sW)));
    return T(sum / double(count));
  }
  int64_t best = 0;
  T best_val = tap_value(plane, sample_taps(a, g, i, j, 0, a.sH, a.sW));
  for (int64_t s = 1; s < count; ++s) {
    const T val = tap_value(plane, sample_taps(a, g, i, j, s, a.sH, a.sW));
    if (better(val, best_val)) {
      best_val = val;
      best = s;
    }
  }
  if (winner) *winner = best;
  return best_val;
}

template <class T>
__global__ void forward_kernel(PsRoiArgs<T> a, T* out) {
  const int64_t bins = a.pooled_h * a.pooled_w, total = a.K * a.C_out * bins;
  NIMBLEOPS_GRID_LOOP(idx, total) {
    const int64_t k = idx / (a.C_out * bins), c = (idx / bins) % a.C_out, i = (idx % bins) / a.pooled_w, j = idx % a.pooled_w;
    out[idx] = output_value(a, k, c, i, j, static_cast<int64_t*>(nullptr));
  }
}

// atomics: one thread per output element
template <class T>
__global__ void backward_atomic_kernel(PsRoiArgs<T> a, const T* grad_out, T* grad_in) {
  const int64_t bins = a.pooled_h * a.pooled_w, total = a.K * a.C_out * bins, plane_size = a.H * a.W;
  NIMBLEOPS_GRID_LOOP(idx, total) {
    const int64_t k = idx / (a.C_out * bins), c = (idx / bins) % a.C_out, i = (idx % bins) / a.pooled_w, j = idx % a.pooled_w;
    RoiGeometry g;
    if (!roi_of(a, k, g)) continue;
    T* gplane = grad_in + (g.n * a.C + (c * a.pooled_h + i) * a.pooled_w + j) * plane_size;
    const T go = grad_out[idx];
    if (a.op == PsRoiOp::pool) {
      const PoolBin b = pool_bin(g, i, j, a.pooled_h, a.pooled_w, a.H, a.W);
      if (b.empty()) continue;
      const T share = go / T((b.h1 - b.h0) * (b.w1 - b.w0));
      for (int64_t h = b.h0; h < b.h1; ++h)
        for (int64_t w = b.w0; w < b.w1; ++w) atomicAdd(gplane + h * a.W + w, share);
      continue;
    }
    const int64_t count = g.grid_h * g.grid_w;
    int64_t first = 0, last = count;
    T share = go / T(count);
    if (a.op == PsRoiOp::align_max) {
      output_value(a, k, c, i, j, &first);
      last = first + 1;
      share = go;
    }
    for (int64_t s = first; s < last; ++s) {
      const Taps t = sample_taps(a, g, i, j, s, a.W, 1);
      for (int q = 0; q < t.count; ++q) atomicAdd(gplane + t.off[q], share * T(t.w[q]));
    }
  }
}

// deterministic, max mode: the winning sample of every output first
template <class T>
__global__ void winner_kernel(PsRoiArgs<T> a, int64_t* winners) {
  const int64_t bins = a.pooled_h * a.pooled_w, total = a.K * a.C_out * bins;
  NIMBLEOPS_GRID_LOOP(idx, total) {
    const int64_t k = idx / (a.C_out * bins), c = (idx / bins) % a.C_out, i = (idx % bins) / a.pooled_w, j = idx % a.pooled_w;
    output_value(a, k, c, i, j, winners + idx);
  }
}

// whether a sample row (or column) reaches pixel row p through one of its two taps
__device__ __forceinline__ bool axis_hits(const Axis& ax, int64_t p) {
  return ax.inside && (ax.low == p || ax.high == p);
}

// deterministic: one thread per grad_input element (n, c_in, y, x), RoIs in order
template <class T>
__global__ void backward_pixel_kernel(PsRoiArgs<T> a, const T* grad_out, const int64_t* winners, T* grad_in) {
  const int64_t bins = a.pooled_h * a.pooled_w, plane_size = a.H * a.W, total = a.N * a.C * plane_size;
  NIMBLEOPS_GRID_LOOP(idx, total) {
    const int64_t x = idx % a.W, y = (idx / a.W) % a.H, c_in = (idx / plane_size) % a.C, n = idx / (plane_size * a.C);
    const int64_t c = c_in / bins, i = (c_in % bins) / a.pooled_w, j = c_in % a.pooled_w;
    T acc = T(0);
    for (int64_t k = 0; k < a.K; ++k) {
      if (a.boxes[k * 5] != double(n)) continue;
      RoiGeometry g;
      if (!roi_of(a, k, g)) continue;
      const int64_t out_idx = ((k * a.C_out + c) * a.pooled_h + i) * a.pooled_w + j;
      const T go = grad_out[out_idx];
      if (a.op == PsRoiOp::pool) {
        const PoolBin b = pool_bin(g, i, j, a.pooled_h, a.pooled_w, a.H, a.W);
        if (!b.empty() && y >= b.h0 && y < b.h1 && x >= b.w0 && x < b.w1)
          acc += go / T((b.h1 - b.h0) * (b.w1 - b.w0));
        continue;
      }
      if (a.op == PsRoiOp::align_max) {
        const int64_t s = winners[out_idx];
        if (s < 0) continue;
        const Taps t = sample_taps(a, g, i, j, s, a.W, 1);
        for (int q = 0; q < t.count; ++q)
          if (t.off[q] == y * a.W + x) acc += go * T(t.w[q]);
        continue;
      }
      const T share = go / T(g.grid_h * g.grid_w);
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const Axis ay = axis_taps(sample_y(g, i, iy), a.H);
        if (!axis_hits(ay, y)) continue;
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const Axis ax = axis_taps(sample_x(g, j, ix), a.W);
          if (!axis_hits(ax, x)) continue;
          const Taps t = combine(ay, ax, a.W, 1);
          for (int q = 0; q < 4; ++q)
            if (t.off[q] == y * a.W + x) acc += share * T(t.w[q]);
        }
      }
    }
    grad_in[idx] = acc;
  }
}

template <class T>
PsRoiArgs<T> make_args(const PsRoiViews& v) {
  NIMBLEOPS_CHECK(v.input.device >= 0, "input: expected CUDA tensors for the CUDA kernels");
  return ps_roi_args<T>(v);
}

}  // namespace

void ps_roi_forward(const PsRoiViews& v, const View& out) {
  CudaDeviceGuard guard(v.input.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.input.dtype, "input", [&] {
    using T = scalar_t;
    const PsRoiArgs<T> a = make_args<T>(v);
    check_like(out, v.input, "out", "input", a.K * a.C_out * a.pooled_h * a.pooled_w, v.input.dtype);
    const int64_t total = out.numel();
    if (total == 0) return;
    forward_kernel<T><<<grid_blocks(total), kGridThreads, 0, reinterpret_cast<cudaStream_t>(v.stream)>>>(a, out.ptr<T>());
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

void ps_roi_backward(const PsRoiViews& v, const View& grad_out, const View& grad_in) {
  CudaDeviceGuard guard(v.input.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.input.dtype, "input", [&] {
    using T = scalar_t;
    const PsRoiArgs<T> a = make_args<T>(v);
    const int64_t outputs = a.K * a.C_out * a.pooled_h * a.pooled_w, inputs = a.N * a.C * a.H * a.W;
    check_like(grad_out, v.input, "grad_output", "input", outputs, v.input.dtype);
    check_like(grad_in, v.input, "grad_input", "input", inputs, v.input.dtype);
    const auto stream = reinterpret_cast<cudaStream_t>(v.stream);
    if (inputs == 0) return;
    if (!v.deterministic) {
      NIMBLEOPS_CUDA_CHECK(cudaMemsetAsync(grad_in.data, 0, sizeof(T) * size_t(inputs), stream));
      if (outputs == 0) return;
      backward_atomic_kernel<T><<<grid_blocks(outputs), kGridThreads, 0, stream>>>(a, grad_out.ptr<T>(), grad_in.ptr<T>());
      NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
      return;
    }
    int64_t* winners = nullptr;
    if (a.op == PsRoiOp::align_max && outputs > 0) {
      NIMBLEOPS_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&winners), sizeof(int64_t) * size_t(outputs), stream));
      winner_kernel<T><<<grid_blocks(outputs), kGridThreads, 0, stream>>>(a, winners);
      NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
    }
    backward_pixel_kernel<T><<<grid_blocks(inputs), kGridThreads, 0, stream>>>(a, grad_out.ptr<T>(), winners, grad_in.ptr<T>());
    const cudaError_t launched = cudaGetLastError();
    if (winners) NIMBLEOPS_CUDA_CHECK(cudaFreeAsync(winners, stream));
    NIMBLEOPS_CUDA_CHECK(launched);
  });
}

}  // namespace cuda
}  // namespace vision
}  // namespace nimbleops
