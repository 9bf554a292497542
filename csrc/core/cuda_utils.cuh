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
