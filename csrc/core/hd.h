// NIMBLEOPS_HD marks the small inline functions that the CPU and CUDA kernels share.
#pragma once

#if defined(__CUDACC__)
#define NIMBLEOPS_HD __host__ __device__ __forceinline__
#else
#define NIMBLEOPS_HD inline
#endif
