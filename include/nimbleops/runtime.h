// nimbleops C++ API: the library's version, threads, SIMD level and CUDA availability.
#pragma once
#include <string>

namespace nimbleops {

// The library's version ("0.1.0"), the Python package's nimbleops.__version__.
const char* version();

// Threads the CPU kernels use (default: OMP_NUM_THREADS, else the core count); results do not
// depend on it. set_num_threads: 1 <= n <= max_num_threads(), else std::invalid_argument;
// std::runtime_error when the system cannot start n threads. In a process forked from one with
// other threads the kernels run on one thread (OpenMP cannot start threads there).
int get_num_threads();
void set_num_threads(int n);
int max_num_threads();

// The SIMD level of the CPU kernels: "baseline", "avx2" or "avx512" (x86-64), at most what the
// CPU supports and NIMBLEOPS_SIMD allows; "auto" picks the best.
void set_simd_level(const std::string& level);
std::string simd_level();

// Whether the CUDA kernels are compiled in, and the usable GPUs now (0 without a driver or GPU,
// or without CUDA kernels; never throws).
bool built_with_cuda();
int cuda_device_count();

}  // namespace nimbleops
