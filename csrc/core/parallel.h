// The one parallel loop helper (OpenMP). Work is split into at most 4 contiguous chunks a thread,
// handed out dynamically (a thread that starts late or is preempted takes fewer); every kernel
// computes each output element on exactly one thread in a fixed order, so results never depend on
// the thread count or on which thread ran which chunk. More chunks a thread would balance better
// but cost a scheduling step each, which small kernels feel (docs/performance.md).
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <omp.h>

#include "nimbleops/runtime.h"

namespace nimbleops {

// The thread count of the parallel loops, get_num_threads() (nimbleops/runtime.h): 1 when
// serial_after_fork(), in a child forked from a process that may hold an OpenMP pool (runtime.cpp
// says why), else the last set_num_threads (default OpenMP's).
bool serial_after_fork();

// Calls f(begin, end) on disjoint chunks covering [0, n). Chunks are at least `grain` long.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  const int threads = get_num_threads();
  if (threads <= 1 || n <= grain || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
  const int64_t max_chunks = (n + grain - 1) / std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(max_chunks, int64_t(threads) * 4);
  std::exception_ptr error = nullptr;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    try {
      f(begin, end);
    } catch (...) {
#pragma omp critical(nimbleops_parallel_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace nimbleops
