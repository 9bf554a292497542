// CUDA pointwise convolution: simple, deterministic kernels (one thread per output element; the
// weight gradient one block per weight with a fixed-order tree reduction). Launched on the
// caller's stream.
#include <cuda_runtime.h>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "vision/pointwise_api.h"

namespace nimbleops {
namespace vision {
namespace cuda {
namespace {

__device__ __forceinline__ int64_t position(int64_t co, int64_t Cout, int64_t s) {
  return s > 1 ? (co % (Cout / s)) * s + co / (Cout / s) : co;
}

template <class T>
__global__ void forward_kernel(const T* x, const T* w, const T* bias, T* out, PointwiseShape s, int64_t groups,
                               int64_t shuffle, bool relu) {
  const int64_t total = s.N * s.Cout * s.HW;
  NIMBLEOPS_GRID_LOOP(e, total) {
    const int64_t p = e % s.HW, co = (e / s.HW) % s.Cout, n = e / (s.HW * s.Cout), g = co / s.Cout_g;
    T acc = bias ? bias[co] : T(0);
    const T* xr = x + (n * s.Cin + g * s.Cin_g) * s.HW + p;
    for (int64_t k = 0; k < s.Cin_g; ++k) acc += w[co * s.Cin_g + k] * xr[k * s.HW];
    if (relu && !(acc > T(0))) acc = T(0);
    out[(n * s.Cout + position(co, s.Cout, shuffle)) * s.HW + p] = acc;
  }
}

// G' = the gradient in unshuffled order, zero where the relu was off
template <class T>
__global__ void masked_grad_kernel(const T* g, const T* out, T* gp, PointwiseShape s, int64_t shuffle, bool relu) {
  const int64_t total = s.N * s.Cout * s.HW;
  NIMBLEOPS_GRID_LOOP(e, total) {
    const int64_t p = e % s.HW, co = (e / s.HW) % s.Cout, n = e / (s.HW * s.Cout);
    const int64_t src = (n * s.Cout + position(co, s.Cout, shuffle)) * s.HW + p;
    gp[e] = (!relu || out[src] > T(0)) ? g[src] : T(0);
  }
}

template <class T>
__global__ void input_kernel(const T* gp, const T* w, T* gx, PointwiseShape s) {
  const int64_t total = s.N * s.Cin * s.HW;
  NIMBLEOPS_GRID_LOOP(e, total) {
    const int64_t p = e % s.HW, ci = (e / s.HW) % s.Cin, n = e / (s.HW * s.Cin), g = ci / s.Cin_g,
                  k = ci % s.Cin_g;
    T acc = T(0);
    for (int64_t i = 0; i < s.Cout_g; ++i) {
      const int64_t co = g * s.Cout_g + i;
      acc += w[co * s.Cin_g + k] * gp[(n * s.Cout + co) * s.HW + p];
    }
    gx[e] = acc;
  }
}

// one block per weight (co, k); k == Cin_g: the bias of co
template <class T>
__global__ void weight_kernel(const T* gp, const T* x, T* gw, T* gb, PointwiseShape s) {
  __shared__ T partial[kGridThreads];
  const int64_t co = blockIdx.x / (s.Cin_g + 1), k = blockIdx.x % (s.Cin_g + 1);
  const bool is_bias = k == s.Cin_g;
  if ((is_bias && !gb) || (!is_bias && !gw)) return;
  const int64_t ci = (co / s.Cout_g) * s.Cin_g + k, count = s.N * s.HW;
  T acc = T(0);
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t p = e % s.HW, n = e / s.HW;
    const T gv = gp[(n * s.Cout + co) * s.HW + p];
    acc += is_bias ? gv : gv * x[(n * s.Cin + ci) * s.HW + p];
  }
  const T sum = block_sum(acc, partial);
  if (threadIdx.x == 0) {
    if (is_bias)
      gb[co] = sum;
    else
      gw[co * s.Cin_g + k] = sum;
  }
}

}  // namespace

void pointwise_forward(const PointwiseViews& v, const View& out) {
  const PointwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device >= 0, "x: expected CUDA tensors for the CUDA kernels");
  check_contiguous(out, "out");
  check_numel(out, s.N * s.Cout * s.HW, "out");
  check_same_device(out, v.x, "out", "x");
  CudaDeviceGuard guard(v.x.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    if (out.numel() == 0) return;
    forward_kernel<T><<<grid_blocks(out.numel()), kGridThreads, 0, reinterpret_cast<cudaStream_t>(v.stream)>>>(
        v.x.ptr<T>(), v.weight.ptr<T>(), v.bias ? v.bias->ptr<T>() : nullptr, out.ptr<T>(), s, v.groups,
        v.shuffle_groups, v.relu);
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

void pointwise_backward(const PointwiseViews& v, const View& grad_out, const std::optional<View>& out,
                        const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                        const std::optional<View>& grad_b) {
  const PointwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device >= 0, "x: expected CUDA tensors for the CUDA kernels");
  NIMBLEOPS_CHECK(!v.relu || out, "internal: the relu backward needs the forward output");
  check_contiguous(grad_out, "grad_output");
  check_numel(grad_out, s.N * s.Cout * s.HW, "grad_output");
  CudaDeviceGuard guard(v.x.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const auto stream = reinterpret_cast<cudaStream_t>(v.stream);
    const int64_t count = s.N * s.Cout * s.HW;
    if (count == 0) return;
    T* gp = nullptr;
    NIMBLEOPS_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&gp), sizeof(T) * size_t(count), stream));
    masked_grad_kernel<T><<<grid_blocks(count), kGridThreads, 0, stream>>>(grad_out.ptr<T>(), out ? out->ptr<T>() : nullptr,
                                                                      gp, s, v.shuffle_groups, v.relu);
    if (grad_x && grad_x->numel() > 0)
      input_kernel<T><<<grid_blocks(grad_x->numel()), kGridThreads, 0, stream>>>(gp, v.weight.ptr<T>(), grad_x->ptr<T>(), s);
    if (grad_w || grad_b)
      weight_kernel<T><<<unsigned(s.Cout * (s.Cin_g + 1)), kGridThreads, 0, stream>>>(
          gp, v.x.ptr<T>(), grad_w ? grad_w->ptr<T>() : nullptr, grad_b ? grad_b->ptr<T>() : nullptr, s);
    const cudaError_t launched = cudaGetLastError();
    NIMBLEOPS_CUDA_CHECK(cudaFreeAsync(gp, stream));
    NIMBLEOPS_CUDA_CHECK(launched);
  });
}

}  // namespace cuda
}  // namespace vision
}  // namespace nimbleops
