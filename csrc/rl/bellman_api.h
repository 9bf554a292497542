// The Bellman entry points the bindings call, one set per device (CPU here, CUDA in
// bellman_cuda.cu). Every argument arrives as a View; validate_mdp() checks what they share.
#pragma once
#include <cstdint>

#include "core/check.h"
#include "nimbleops/rl.h"
#include "rl/bellman_solvers.h"

namespace nimbleops {
namespace rl {

// Shapes, dtypes, contiguity and device agreement of a model (not its values).
inline void validate_mdp(const MdpViews& m) {
  NIMBLEOPS_CHECK(m.S >= 1 && m.A >= 1 && m.B >= 0, "MDP: expected S >= 1, A >= 1, got S=", m.S, " A=", m.A);
  check_contiguous(m.R, "R");
  check_numel(m.R, m.B * m.S * m.A, "R");
  NIMBLEOPS_CHECK(m.R.dtype == DType::float32 || m.R.dtype == DType::float64, "R: expected float32 or float64, got ",
                  dtype_name(m.R.dtype));
  if (!m.sparse) {
    check_like(m.P, m.R, "P", "R", m.B * m.S * m.A * m.S, m.R.dtype);
  } else {
    NIMBLEOPS_CHECK(m.B == 1, "sparse transitions hold one MDP, got a batch of ", m.B);
    check_contiguous(m.indptr, "indptr");
    check_contiguous(m.indices, "indices");
    check_contiguous(m.data, "data");
    check_dtype(m.indptr, DType::int64, "indptr");
    NIMBLEOPS_CHECK(m.indices.dtype == DType::int32 || m.indices.dtype == DType::int64,
                    "indices: expected int32 or int64, got ", dtype_name(m.indices.dtype));
    check_dtype(m.data, m.R.dtype, "data");
    check_numel(m.indptr, m.S * m.A + 1, "indptr");
    check_numel(m.data, m.indices.numel(), "data");
    check_same_device(m.indptr, m.R, "indptr", "R");
    check_same_device(m.indices, m.R, "indices", "R");
    check_same_device(m.data, m.R, "data", "R");
  }
}

// The views of a dense [B, S, A, S] / sparse (CSR) model, their shapes, dtypes and devices checked
// (validate_mdp; not their values).
inline MdpViews dense_views(const View& P, const View& R, int64_t B, int64_t S, int64_t A) {
  MdpViews m;
  m.P = P;
  m.R = R;
  m.B = B;
  m.S = S;
  m.A = A;
  validate_mdp(m);
  return m;
}

inline MdpViews sparse_views(const View& indptr, const View& indices, const View& data, const View& R, int64_t S,
                             int64_t A) {
  MdpViews m;
  m.sparse = true;
  m.indptr = indptr;
  m.indices = indices;
  m.data = data;
  m.R = R;
  m.B = 1;
  m.S = S;
  m.A = A;
  validate_mdp(m);
  return m;
}

inline void validate_values(const MdpViews& m, const View& V, const char* name, int64_t copies = 1) {
  check_like(V, m.R, name, "R", copies * m.B * m.S, m.R.dtype);
}

inline void validate_actions(const MdpViews& m, const View& pol, const char* name, int64_t copies = 1) {
  check_like(pol, m.R, name, "R", copies * m.B * m.S, DType::int64);
}

inline void check_gamma(double gamma, bool infinite_horizon) {
  if (infinite_horizon)
    NIMBLEOPS_CHECK(gamma >= 0.0 && gamma < 1.0,
                    "gamma: expected 0 <= gamma < 1 for an infinite-horizon solver, got ", gamma);
  else
    NIMBLEOPS_CHECK(gamma >= 0.0 && gamma <= 1.0, "gamma: expected 0 <= gamma <= 1, got ", gamma);
}

// Calls f(model) with the DenseMdp<T> or SparseMdp<T, int32/int64> these views describe
// (already validated; T must be R's dtype).
template <class T, class F>
auto with_model(const MdpViews& m, F&& f) {
  if (!m.sparse) return f(DenseMdp<T>{m.P.ptr<T>(), m.R.ptr<T>(), m.B, m.S, m.A});
  if (m.indices.dtype == DType::int32)
    return f(SparseMdp<T, int32_t>{m.indptr.ptr<int64_t>(), m.indices.ptr<int32_t>(), m.data.ptr<T>(), m.R.ptr<T>(),
                                   m.B, m.S, m.A});
  return f(SparseMdp<T, int64_t>{m.indptr.ptr<int64_t>(), m.indices.ptr<int64_t>(), m.data.ptr<T>(), m.R.ptr<T>(), m.B,
                                 m.S, m.A});
}

#define NIMBLEOPS_BELLMAN_DEVICE_API(ns)                                                                 \
  namespace ns {                                                                                         \
  void q_values(const MdpViews& m, const View& V, double gamma, const View& Q);                          \
  void optimality_backup(const MdpViews& m, const View& V, double gamma, const View& V_out,              \
                         const View& policy_out);                                                        \
  void expectation_backup(const MdpViews& m, const View& V, double gamma, const View& policy,            \
                          const View& V_out);                                                            \
  SolveStats value_iteration(const MdpViews& m, double gamma, const View& V, const View& policy, double tol, \
                             int64_t max_iter, StopRule rule, bool gauss_seidel);                        \
  SolveStats policy_evaluation(const MdpViews& m, double gamma, const View& policy, const View& V,       \
                               double tol, int64_t max_iter);                                            \
  SolveStats policy_iteration(const MdpViews& m, double gamma, const View& V, const View& policy,        \
                              double eval_tol, int64_t eval_max_iter, int64_t max_iter);                 \
  SolveStats modified_policy_iteration(const MdpViews& m, double gamma, const View& V, const View& policy, \
                                       int64_t k, double tol, int64_t max_iter);                         \
  void finite_horizon(const MdpViews& m, double gamma, int64_t horizon, const View& V, const View& policy); \
  }

NIMBLEOPS_BELLMAN_DEVICE_API(cpu)
#ifdef NIMBLEOPS_WITH_CUDA
NIMBLEOPS_BELLMAN_DEVICE_API(cuda)
#endif

namespace cpu {
// CSR structure: indptr[0] == 0, non-decreasing, indptr[S*A] == nnz, 0 <= indices < S.
void check_csr(const View& indptr, const View& indices, int64_t S, int64_t A);
// The row sums of a CSR matrix (structure checked) in one parallel pass without temporaries:
// their smallest and largest value (float64, each row summed in index order), the lowest row
// reaching the largest, and the first position of data outside [0, 1] (nan included; data.numel()
// when none).
struct CsrRowSums {
  double min_sum = 0.0, max_sum = 0.0;
  int64_t max_row = 0, bad_value = 0;
};
CsrRowSums csr_row_sums(const View& indptr, const View& data);
// idx: a contiguous int64 CPU array of n entries, each in [0, hi); std::out_of_range (IndexError)
// naming the first bad entry otherwise. One vectorised parallel pass when all is well.
void check_index_range(const View& idx, int64_t hi, const char* name, int64_t n);
// Whether a contiguous float array holds no nan and no +-inf. One vectorised pass.
bool all_finite(const View& x);
// R [..., A]: no nan, no +inf, at least one action > -inf per state. One pass.
void check_rewards(const View& R, int64_t A);
// Every row of row_length values finite in [0, 1] and summing to at most 1 + tol. One pass.
void check_probabilities(const View& P, int64_t row_length, double row_sum_tol, const char* name);
}  // namespace cpu

}  // namespace rl
}  // namespace nimbleops
