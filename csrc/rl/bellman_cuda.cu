// CUDA Bellman kernels: one warp per state (dense and sparse), each q's dot product reduced
// across the warp with a fixed butterfly, per-MDP statistics combined with order-independent
// atomic max/min/add: results are deterministic run to run. Launched on the stream the caller
// passes (torch's current stream). The solvers of bellman_solvers.h drive these kernels from
// the host, reading two numbers per MDP back after each sweep.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "rl/bellman_entry.h"

namespace nimbleops {
namespace rl {
namespace cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;

// ---- order-independent float atomics (canonicalised -0.0 so the int order holds) -------------
__device__ __forceinline__ void atomic_max(float* addr, float v) {
  v += 0.0f;
  if (v >= 0.0f) atomicMax(reinterpret_cast<int*>(addr), __float_as_int(v));
  else atomicMin(reinterpret_cast<unsigned int*>(addr), __float_as_uint(v));
}
__device__ __forceinline__ void atomic_min(float* addr, float v) {
  v += 0.0f;
  if (v >= 0.0f) atomicMin(reinterpret_cast<int*>(addr), __float_as_int(v));
  else atomicMax(reinterpret_cast<unsigned int*>(addr), __float_as_uint(v));
}
__device__ __forceinline__ void atomic_max(double* addr, double v) {
  v += 0.0;
  if (v >= 0.0) atomicMax(reinterpret_cast<long long*>(addr), __double_as_longlong(v));
  else atomicMin(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(__double_as_longlong(v)));
}
__device__ __forceinline__ void atomic_min(double* addr, double v) {
  v += 0.0;
  if (v >= 0.0) atomicMin(reinterpret_cast<long long*>(addr), __double_as_longlong(v));
  else atomicMax(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(__double_as_longlong(v)));
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;  // every lane holds the same sum
}

// Warp-cooperative row dot products for the two models.
template <class T>
struct DenseDev {
  DenseMdp<T> m;
  __device__ T dot(int64_t b, int64_t s, int64_t a, const T* Vb, int lane) const {
    const T* row = m.row(b, s, a);
    T acc = T(0);
    for (int64_t j = lane; j < m.S; j += kWarp) acc += row[j] * Vb[j];
    return warp_sum(acc);
  }
};

template <class T, class I>
struct SparseDev {
  SparseMdp<T, I> m;
  __device__ T dot(int64_t b, int64_t s, int64_t a, const T* Vb, int lane) const {
    const int64_t r = s * m.A + a;
    T acc = T(0);
    for (int64_t k = m.indptr[r] + lane; k < m.indptr[r + 1]; k += kWarp) acc += m.data[k] * Vb[m.indices[k]];
    return warp_sum(acc);
  }
};

template <class T>
DenseDev<T> rows_for(DenseMdp<T> m) {
  return DenseDev<T>{m};
}
template <class T, class I>
SparseDev<T, I> rows_for(SparseMdp<T, I> m) {
  return SparseDev<T, I>{m};
}

enum class Sweep : int { q_values, optimality, expect_actions, expect_probs, improve };

template <class T>
struct SweepArgs {
  const T* V;
  T* out;               // Q [B,S,A] or V_out [B,S]
  int64_t* policy;      // greedy out (optimality), in (expect_actions), in/out (improve)
  const T* probs;       // expect_probs
  const uint8_t* active;
  T* dmax;              // per MDP, or the Bellman residual (improve)
  T* dmin;
  unsigned long long* count;  // improve: switched states per MDP
  T gamma;
};

template <Sweep kind, class T, class Rows>
__global__ void sweep_kernel(Rows rows, SweepArgs<T> args, int64_t B, int64_t S, int64_t A) {
  const int lane = threadIdx.x % kWarp;
  const int64_t state = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (state >= B * S) return;
  const int64_t b = state / S, s = state - b * S;
  if (args.active && !args.active[b]) return;
  const T* Vb = args.V + b * S;
  const T* R = rows.m.R;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  auto q = [&](int64_t a) { return q_from(R[(b * S + s) * A + a], args.gamma, rows.dot(b, s, a, Vb, lane)); };

  T value;
  if (kind == Sweep::q_values) {
    for (int64_t a = 0; a < A; ++a) {
      const T qa = q(a);
      if (lane == 0) args.out[(b * S + s) * A + a] = qa;
    }
    return;
  } else if (kind == Sweep::expect_actions) {
    const int64_t a = args.policy[b * S + s];
    value = (a >= 0 && a < A) ? q(a) : std::numeric_limits<T>::quiet_NaN();  // never read out of bounds
  } else if (kind == Sweep::expect_probs) {
    value = T(0);
    const T* p = args.probs + (b * S + s) * A;
    for (int64_t a = 0; a < A; ++a)
      if (p[a] > T(0)) value += p[a] * q(a);
  } else {
    T best = neg_inf, cur_q = neg_inf;
    int64_t arg = 0;
    const int64_t cur = kind == Sweep::improve ? args.policy[b * S + s] : -1;
    for (int64_t a = 0; a < A; ++a) {
      const T qa = q(a);
      if (a == 0 || qa > best) {  // lowest index wins ties
        best = qa;
        arg = a;
      }
      if (a == cur) cur_q = qa;
    }
    if (kind == Sweep::improve) {
      if (lane == 0) {
        const T r = best - Vb[s];
        atomic_max(&args.dmax[b], r < T(0) ? -r : r);
        if (best > cur_q) {
          args.policy[b * S + s] = arg;
          atomicAdd(&args.count[b], 1ull);
        }
      }
      return;
    }
    value = best;
    if (lane == 0 && args.policy) args.policy[b * S + s] = arg;
  }
  if (lane == 0) {
    args.out[b * S + s] = value;
    if (args.dmax) atomic_max(&args.dmax[b], value - Vb[s]);
    if (args.dmin) atomic_min(&args.dmin[b], value - Vb[s]);
  }
}

template <class T>
__global__ void init_stats_kernel(T* dmax, T* dmin, unsigned long long* count, int64_t B) {
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  if (dmax) dmax[b] = -std::numeric_limits<T>::infinity();
  if (dmin) dmin[b] = std::numeric_limits<T>::infinity();
  if (count) count[b] = 0;
}

template <class T>
__global__ void copy_active_kernel(T* dst, const T* src, const T* shift, const uint8_t* active, int64_t B, int64_t S) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= B * S) return;
  const int64_t b = i / S;
  if (active[b]) dst[i] = shift ? src[i] + shift[b] : src[i];
}

__global__ void count_bad_actions_kernel(const int64_t* policy, int64_t n, int64_t A, unsigned long long* bad) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n && (policy[i] < 0 || policy[i] >= A)) atomicAdd(bad, 1ull);
}

inline unsigned blocks_for(int64_t threads, int per_block) {
  return static_cast<unsigned>((threads + per_block - 1) / per_block);
}

template <class Scalar, class Rows>
struct CudaOps {
  using T = Scalar;
  template <class U>
  struct Buffer {
    U* ptr = nullptr;
    explicit Buffer(int64_t n) {
      if (n > 0) NIMBLEOPS_CUDA_CHECK(cudaMalloc(&ptr, sizeof(U) * n));
    }
    Buffer(Buffer&& o) noexcept : ptr(o.ptr) { o.ptr = nullptr; }
    Buffer(const Buffer&) = delete;
    ~Buffer() {
      if (ptr) cudaFree(ptr);
    }
    U* get() { return ptr; }
  };

  Rows rows;
  T gamma;
  int64_t B, S, A;
  cudaStream_t stream;
  Buffer<unsigned long long> count;

  CudaOps(Rows r, T g, cudaStream_t st) : rows(r), gamma(g), B(r.m.B), S(r.m.S), A(r.m.A), stream(st), count(r.m.B) {}

  template <class U>
  Buffer<U> alloc(int64_t n) { return Buffer<U>(n); }
  template <class U>
  void upload(U* dst, const U* src, int64_t n) {
    NIMBLEOPS_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(U) * n, cudaMemcpyHostToDevice, stream));
  }
  template <class U>
  void download(U* dst, const U* src, int64_t n) {
    NIMBLEOPS_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(U) * n, cudaMemcpyDeviceToHost, stream));
    NIMBLEOPS_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  template <Sweep kind>
  void launch(const SweepArgs<T>& args) {
    if (args.dmax || args.dmin || args.count) {
      init_stats_kernel<T><<<blocks_for(B, 256), 256, 0, stream>>>(args.dmax, args.dmin, args.count, B);
    }
    if (B * S > 0) {
      constexpr int threads = kWarp * kWarpsPerBlock;
      sweep_kernel<kind, T, Rows><<<blocks_for(B * S * kWarp, threads), threads, 0, stream>>>(rows, args, B, S, A);
    }
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  }

  SweepArgs<T> args(const T* V, T* out, int64_t* policy, const uint8_t* active, T* dmax, T* dmin) const {
    return SweepArgs<T>{V, out, policy, nullptr, active, dmax, dmin, nullptr, gamma};
  }

  void q_values(const T* V, T* Q) { launch<Sweep::q_values>(args(V, Q, nullptr, nullptr, nullptr, nullptr)); }

  void optimality(const T* V, T* V_out, int64_t* policy, const uint8_t* active, T* dmax, T* dmin) {
    launch<Sweep::optimality>(args(V, V_out, policy, active, dmax, dmin));
  }

  void optimality_gauss_seidel(T*, int64_t*, const uint8_t*, T*, T*) {
    throw std::invalid_argument("gauss_seidel=True is sequential over states and runs on the CPU only");
  }

  void begin_policy(PolicyRef<T>) {}  // the kernels read the policy's rows in place
  void end_policy() {}

  void expectation(const T* V, T* V_out, PolicyRef<T> pol, const uint8_t* active, T* dmax, T* dmin) {
    SweepArgs<T> a = args(V, V_out, const_cast<int64_t*>(pol.actions), active, dmax, dmin);
    if (pol.actions) {
      launch<Sweep::expect_actions>(a);
    } else {
      a.probs = pol.probs;
      launch<Sweep::expect_probs>(a);
    }
  }

  void improve(const T* V, int64_t* policy, const uint8_t* active, int64_t* changed, T* bellman_residual) {
    SweepArgs<T> a = args(V, nullptr, policy, active, bellman_residual, nullptr);
    a.count = count.get();
    launch<Sweep::improve>(a);
    static_assert(sizeof(unsigned long long) == sizeof(int64_t), "count layout");
    NIMBLEOPS_CUDA_CHECK(cudaMemcpyAsync(changed, count.get(), sizeof(int64_t) * B, cudaMemcpyDeviceToDevice, stream));
  }

  void copy_active(T* dst, const T* src, const uint8_t* active) { shift_active(dst, src, nullptr, active); }

  // dst[b] = src[b] (+ shift[b] unless shift is null) for the active MDPs
  void shift_active(T* dst, const T* src, const T* shift, const uint8_t* active) {
    if (B * S == 0) return;
    copy_active_kernel<T><<<blocks_for(B * S, 256), 256, 0, stream>>>(dst, src, shift, active, B, S);
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  }
};

template <class F>
auto with_ops(const MdpViews& m, double gamma, F&& f) {
  validate_mdp(m);
  NIMBLEOPS_CHECK(m.R.device >= 0, "R: expected a CUDA tensor for the CUDA kernels");
  CudaDeviceGuard guard(m.R.device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(m.stream);
  return NIMBLEOPS_DISPATCH_FLOATING(m.R.dtype, "R", [&] {
    return with_model<scalar_t>(m, [&](auto model) {
      auto rows = rows_for(model);
      CudaOps<scalar_t, decltype(rows)> ops(rows, static_cast<scalar_t>(gamma), stream);
      return f(ops);
    });
  });
}

}  // namespace

struct CudaBackend {
  template <class F>
  static auto with_ops(const MdpViews& m, double gamma, F&& f) {
    return cuda::with_ops(m, gamma, std::forward<F>(f));
  }
  // Range check of an int64 action array on the device (one counter read back).
  static void check_actions(const View& policy, int64_t A, const char* name) {
    const int64_t n = policy.numel();
    if (n == 0) return;
    CudaDeviceGuard guard(policy.device);
    unsigned long long* bad = nullptr;
    NIMBLEOPS_CUDA_CHECK(cudaMalloc(&bad, sizeof(unsigned long long)));
    unsigned long long host = 0;
    cudaMemset(bad, 0, sizeof(unsigned long long));
    count_bad_actions_kernel<<<blocks_for(n, 256), 256>>>(policy.ptr<int64_t>(), n, A, bad);
    cudaError_t err = cudaMemcpy(&host, bad, sizeof(host), cudaMemcpyDeviceToHost);
    cudaFree(bad);
    NIMBLEOPS_CUDA_CHECK(err);
    NIMBLEOPS_CHECK_INDEX(host == 0, name, ": ", host, " actions are out of range [0, ", A, ")");
  }
};

NIMBLEOPS_BELLMAN_DEFINE_ENTRIES(CudaBackend)

}  // namespace cuda
}  // namespace rl
}  // namespace nimbleops
