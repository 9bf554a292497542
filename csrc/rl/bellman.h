// Bellman backups: the per-element math shared by the CPU (bellman_cpu.cpp, bellman_per_isa.cpp)
// and CUDA (bellman_cuda.cu) kernels.
//
// Models (all contiguous, row-major):
//   dense : P [B, S, A, S'] (next state fastest), R [B, S, A]
//   sparse: CSR over the S*A state-action rows (row s*A + a): indptr [S*A+1] (int64),
//           indices [nnz] (int32 or int64), data [nnz]; R [S, A]; one MDP (B = 1)
// q(b, s, a) = R[b, s, a] + gamma * sum_s' P[b, s, a, s'] V[b, s']; R = -inf marks an infeasible
// action, whose q is -inf and which is never chosen. Ties go to the lowest action index.
#pragma once
#include <cstdint>
#include <limits>

#ifdef __CUDACC__
#define NIMBLEOPS_HD __host__ __device__ __forceinline__
#else
#define NIMBLEOPS_HD inline
#endif

namespace nimbleops {
namespace rl {

template <class T>
struct DenseMdp {
  const T* P;
  const T* R;
  int64_t B, S, A;
  NIMBLEOPS_HD const T* row(int64_t b, int64_t s, int64_t a) const { return P + ((b * S + s) * A + a) * S; }
  NIMBLEOPS_HD T reward(int64_t b, int64_t s, int64_t a) const { return R[(b * S + s) * A + a]; }
};

template <class T, class I>
struct SparseMdp {
  const int64_t* indptr;
  const I* indices;
  const T* data;
  const T* R;
  int64_t B, S, A;  // B == 1
  NIMBLEOPS_HD T reward(int64_t b, int64_t s, int64_t a) const { return R[(b * S + s) * A + a]; }
  // sum_k data[k] * V[indices[k]] over the row (s, a), in storage order
  NIMBLEOPS_HD T row_dot(int64_t s, int64_t a, const T* V) const {
    const int64_t r = s * A + a;
    T acc = T(0);
    for (int64_t k = indptr[r]; k < indptr[r + 1]; ++k) acc += data[k] * V[indices[k]];
    return acc;
  }
};

// q from reward and expected next value; -inf rewards stay -inf.
template <class T>
NIMBLEOPS_HD T q_from(T reward, T gamma, T expected_next) {
  return reward + gamma * expected_next;
}

// What the solvers read back after each sweep, per MDP: the largest and smallest V_new - V.
template <class T>
NIMBLEOPS_HD T sup_norm(T dmax, T dmin) {
  const T a = dmax < T(0) ? -dmax : dmax, b = dmin < T(0) ? -dmin : dmin;
  return a > b ? a : b;
}

}  // namespace rl
}  // namespace nimbleops
