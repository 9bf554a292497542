// Helpers shared by the CUDA sources: error checks that throw, and a device guard.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>

#include "core/check.h"

#define NIMBLEOPS_CUDA_CHECK(expr)                                                                   \
  do {                                                                                               \
    cudaError_t err__ = (expr);                                                                      \
    if (err__ != cudaSuccess)                                                                        \
      throw std::runtime_error(::nimbleops::concat("CUDA error: ", cudaGetErrorString(err__), " at ", #expr)); \
  } while (0)

namespace nimbleops {

// Launch shape of the element-wise kernels: kGridThreads threads a block and at most 65535 * 32
// blocks; the kernels walk their elements with NIMBLEOPS_GRID_LOOP (a grid-stride loop), which
// covers whatever the capped grid leaves.
constexpr int kGridThreads = 256;

inline unsigned grid_blocks(int64_t n) {
  const int64_t b = (n + kGridThreads - 1) / kGridThreads;
  return static_cast<unsigned>(b < 65535 * 32 ? b : 65535 * 32);
}

#define NIMBLEOPS_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

#ifdef __CUDACC__
// The sum of every thread's v in a block of kGridThreads threads, in a fixed order (a tree over
// `shared`, kGridThreads elements): deterministic; the result is valid in thread 0.
template <class T>
__device__ T block_sum(T v, T* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int step = kGridThreads / 2; step > 0; step /= 2) {
    if (int(threadIdx.x) < step) shared[threadIdx.x] += shared[threadIdx.x + step];
    __syncthreads();
  }
  return shared[0];
}
#endif

// Makes `device` current for its lifetime, then restores the previous one.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device) {
    NIMBLEOPS_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) NIMBLEOPS_CUDA_CHECK(cudaSetDevice(device));
  }
  ~CudaDeviceGuard() { cudaSetDevice(previous_); }
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace nimbleops
