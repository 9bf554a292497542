// CUDA tabular TD updates (rl/td_api.h) with the per-transition math of rl/td.h. Accumulate
// mode: the TD errors one thread per transition from the tables as they are; then the cells
// sorted (CUB's stable radix sort of (cell, transition)) and each cell's increments summed in
// transition order by one thread: deterministic, the bits of the CPU kernel and numpy.add.at.
// Sequential mode is the online algorithm, a chain of dependencies: one GPU thread (correct,
// not fast; the CPU kernel is the fast path for it).
#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "rl/td.h"
#include "rl/td_api.h"

namespace nimbleops {
namespace rl {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <class T, TdRule R>
__device__ bool in_range(const Td<T, R>& td, int64_t i) {
  const bool states = td.s[i] >= 0 && td.s[i] < td.S && td.sn[i] >= 0 && td.sn[i] < td.S;
  const bool action = R == TdRule::td0 || (td.a[i] >= 0 && td.a[i] < td.A);
  const bool next_action = R != TdRule::sarsa || (td.an[i] >= 0 && td.an[i] < td.A);
  return states && action && next_action;
}

template <class T, TdRule R>
__global__ void delta_kernel(Td<T, R> td, T* out, int64_t* keys, int64_t* order) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= td.N) return;
  const bool ok = in_range(td, i);
  out[i] = ok ? td.delta(i) : T(0);
  // the cell of transition i (the second table's cells after the first's); -1 sorts first and is skipped
  const int64_t second = (R == TdRule::double_q && !td.first[i]) ? td.S * td.A : 0;
  keys[i] = ok ? second + td.s[i] * td.A + td.action(i) : -1;
  order[i] = i;
}

// one thread per run of equal cells: the increments in transition order
template <class T, TdRule R>
__global__ void apply_kernel(Td<T, R> td, const T* delta, const int64_t* keys, const int64_t* order) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= td.N || keys[r] < 0 || (r > 0 && keys[r - 1] == keys[r])) return;
  const int64_t cells = td.S * td.A, key = keys[r];
  T* X = key >= cells ? td.Q2 : td.Q1;
  T acc = X[key % cells];
  for (int64_t q = r; q < td.N && keys[q] == key; ++q) acc += td.alpha_at(order[q]) * delta[order[q]];
  X[key % cells] = acc;
}

template <class T, TdRule R>
__global__ void sequential_kernel(Td<T, R> td, T* out) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  for (int64_t i = 0; i < td.N; ++i) {
    if (!in_range(td, i)) {
      out[i] = T(0);
      continue;
    }
    const T d = td.delta(i);
    out[i] = d;
    td.cell(i) += td.alpha_at(i) * d;
  }
}

}  // namespace

void td_update(const TdViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.Q.device >= 0, "Q: expected a CUDA tensor for the CUDA kernels");
  const int64_t N = validate_td(v, td_errors);
  const int dev = v.Q.device;
  const DType dt = v.Q.dtype;
  if (N == 0) return;
  CudaDeviceGuard guard(dev);
  const auto stream = reinterpret_cast<cudaStream_t>(v.stream);
  NIMBLEOPS_DISPATCH_FLOATING(dt, "Q", [&] {
    using T = scalar_t;
    auto run = [&](auto rule) {
      constexpr TdRule R = decltype(rule)::value;
      const Td<T, R> td = td_args<T, R>(v);
      T* out = td_errors.ptr<T>();
      if (v.sequential) {
        sequential_kernel<T, R><<<1, 1, 0, stream>>>(td, out);
        NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
        return;
      }
      // keys, order, sorted keys, sorted order, then CUB's temporary storage
      int64_t* buf = nullptr;
      size_t temp_bytes = 0;
      NIMBLEOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, static_cast<int64_t*>(nullptr),
                                                           static_cast<int64_t*>(nullptr),
                                                           static_cast<int64_t*>(nullptr),
                                                           static_cast<int64_t*>(nullptr), int(N), 0, 64, stream));
      const size_t words = size_t(4 * N) + (temp_bytes + sizeof(int64_t) - 1) / sizeof(int64_t);
      NIMBLEOPS_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&buf), words * sizeof(int64_t), stream));
      int64_t *keys = buf, *order = buf + N, *keys_sorted = buf + 2 * N, *order_sorted = buf + 3 * N;
      const unsigned blocks = unsigned((N + kThreads - 1) / kThreads);
      delta_kernel<T, R><<<blocks, kThreads, 0, stream>>>(td, out, keys, order);
      cudaError_t err = cudaGetLastError();
      if (err == cudaSuccess)
        err = cub::DeviceRadixSort::SortPairs(buf + 4 * N, temp_bytes, keys, keys_sorted, order, order_sorted, int(N),
                                              0, 64, stream);
      if (err == cudaSuccess) {
        apply_kernel<T, R><<<blocks, kThreads, 0, stream>>>(td, out, keys_sorted, order_sorted);
        err = cudaGetLastError();
      }
      NIMBLEOPS_CUDA_CHECK(cudaFreeAsync(buf, stream));
      NIMBLEOPS_CUDA_CHECK(err);
    };
    NIMBLEOPS_CHECK(N < (int64_t(1) << 31), "s: at most 2^31 - 1 transitions per call on CUDA, got ", N);
    with_rule(v.rule, run);
  });
}

}  // namespace cuda
}  // namespace rl
}  // namespace nimbleops
