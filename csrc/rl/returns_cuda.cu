// CUDA return estimators: one thread per column (environment), scanning its T steps with the
// per-element math of rl/returns.h, so each column's arithmetic is the CPU's. Launched on the
// caller's stream; deterministic (no atomics).
#include <cuda_runtime.h>

#include <stdexcept>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "rl/returns_api.h"

namespace nimbleops {
namespace rl {
namespace cuda {
namespace {

template <Estimator estimator, bool kGA, class T>
__global__ void forward_kernel(ReturnsArgs<T> a) {
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= a.cols) return;
  const int64_t B = a.cols;
  if constexpr (estimator == Estimator::n_step) {
    for (int64_t t = 0; t < a.steps; ++t) n_step_at<kGA>(a, t, b, false);
  } else {
    T after = T(0);
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      forward_step<estimator, kGA>(a, t * B + b, t == a.steps - 1, after);
      after = a.out0[t * B + b];
    }
    if constexpr (estimator == Estimator::vtrace) {
      for (int64_t t = 0; t < a.steps; ++t) {
        const bool last = t == a.steps - 1;
        const int64_t tn = last ? t : t + 1;
        vtrace_pg_step<kGA>(a, t * B + b, last, a.out0[tn * B + b], a.values[tn * B + b]);
      }
      for (int64_t t = 0; t < a.steps; ++t) a.out0[t * B + b] += a.values[t * B + b];
    }
  }
}

template <Estimator estimator, bool kGA, class T>
__global__ void backward_kernel(ReturnsArgs<T> a) {
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= a.cols) return;
  const int64_t B = a.cols;
  if constexpr (estimator == Estimator::n_step) {
    for (int64_t t = 0; t < a.steps; ++t) {
      a.grad_rewards[t * B + b] = T(0);
      a.grad_next_values[t * B + b] = T(0);
    }
    for (int64_t t = 0; t < a.steps; ++t) n_step_at<kGA>(a, t, b, true);
  } else {
    T carry = T(0), pg_carry = T(0);
    for (int64_t t = 0; t < a.steps; ++t) backward_step<estimator, kGA>(a, t * B + b, t == a.steps - 1, carry, pg_carry);
  }
}

constexpr int kThreads = 128;

}  // namespace

void returns_forward(const ReturnsViews& v, const View& out0, const std::optional<View>& out1) {
  NIMBLEOPS_CHECK(v.rewards.device >= 0, "rewards: expected CUDA tensors for the CUDA kernels");
  CudaDeviceGuard guard(v.rewards.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.rewards.dtype, "rewards", [&] {
    ReturnsArgs<scalar_t> a = returns_args<scalar_t>(v);
    bind_outputs(v, a, out0, out1);
    if (a.cols == 0 || a.steps == 0) return;
    const unsigned blocks = static_cast<unsigned>((a.cols + kThreads - 1) / kThreads);
    with_estimator(v.estimator, a, [&](auto k, auto ga) {
      forward_kernel<decltype(k)::value, decltype(ga)::value, scalar_t>
          <<<blocks, kThreads, 0, reinterpret_cast<cudaStream_t>(v.stream)>>>(a);
    });
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

void returns_backward(const ReturnsViews& v, const std::optional<View>& grad_out0, const std::optional<View>& grad_out1,
                      const View& grad_rewards, const std::optional<View>& grad_values, const View& grad_next_values) {
  NIMBLEOPS_CHECK(v.rewards.device >= 0, "rewards: expected CUDA tensors for the CUDA kernels");
  NIMBLEOPS_CHECK(v.estimator != Estimator::n_step || grad_out0, "internal: n-step backward needs grad_out0");
  CudaDeviceGuard guard(v.rewards.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.rewards.dtype, "rewards", [&] {
    ReturnsArgs<scalar_t> a = returns_args<scalar_t>(v);
    bind_gradients(v, a, grad_out0, grad_out1, grad_rewards, grad_values, grad_next_values);
    if (a.cols == 0 || a.steps == 0) return;
    const unsigned blocks = static_cast<unsigned>((a.cols + kThreads - 1) / kThreads);
    with_estimator(v.estimator, a, [&](auto k, auto ga) {
      backward_kernel<decltype(k)::value, decltype(ga)::value, scalar_t>
          <<<blocks, kThreads, 0, reinterpret_cast<cudaStream_t>(v.stream)>>>(a);
    });
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace cuda
}  // namespace rl
}  // namespace nimbleops
