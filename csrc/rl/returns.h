// Return and advantage estimators over rollouts [T, B] (time-major, columns contiguous): the
// argument block shared by the CPU (returns_per_isa.cpp, per ISA) and CUDA (returns_cuda.cu) kernels.
//
// Conventions (torchrl's / Gymnasium's): rewards[t], values[t] = V(s_t), next_values[t] =
// V(s_{t+1}) (for a truncated step, the value of the final observation), terminated[t] (no
// bootstrap), truncated[t] (bootstrap, but the recursion stops); done = terminated | truncated;
// the last step bootstraps from next_values. With nt = 1 - terminated and cont = (not done and
// t < T-1):
//   discounted: G_t = r_t + g_t nt (cont ? G_{t+1} : nv_t)
//   lambda:     G_t = r_t + g_t nt ((1 - lam) nv_t + lam (cont ? G_{t+1} : nv_t))
//   gae:        A_t = r_t + g_t nt nv_t - v_t + g_t lam cont A_{t+1};  targets = A + v
//   n-step:     G_t = sum_{k<m} D_k r_{t+k} + D_m nt_{t+m-1} nv_{t+m-1}, D_k = prod_{j<k} g_{t+j},
//               m = min(n, T - t, steps to the end of the episode)
//   vtrace:     rho = min(rho_clip, e^lr), c = lam min(c_clip, e^lr) (given precomputed: the
//               exponentials are vectorised by numpy / torch);
//               a_t = rho_t (r_t + g_t nt nv_t - v_t) + g_t c_t cont a_{t+1};  vs = v + a;
//               pg_t = rho_t (r_t + g_t nt (cont ? vs_{t+1} : nv_t) - v_t)
// Every estimator is linear in (rewards, values, next_values); the backward kernels are the
// adjoint scans (forward in time).
#pragma once
#include <cstdint>

#include "nimbleops/enums.h"

#ifdef __CUDACC__
#define NIMBLEOPS_RETURNS_FN static __host__ __device__ __forceinline__
#else
#define NIMBLEOPS_RETURNS_FN static inline  // internal linkage: safe in every per-ISA unit
#endif

namespace nimbleops {
namespace rl {

// compile-time tags (no <type_traits>: this header is also compiled into the per-ISA units)
template <Estimator K>
struct EstimatorTag {
  static constexpr Estimator value = K;
};
template <bool B>
struct EstimatorFlag {
  static constexpr bool value = B;
};

template <class T>
struct ReturnsArgs {
  int64_t steps = 0, cols = 0;  // T, B
  const T* rewards = nullptr;
  const T* values = nullptr;       // gae, vtrace
  const T* next_values = nullptr;
  const uint8_t* terminated = nullptr;
  const uint8_t* truncated = nullptr;
  const T* gamma_array = nullptr;  // [T, B], or null: gamma_scalar
  T gamma_scalar = T(0);
  T lam = T(1);
  int64_t n = 1;                   // n-step
  const T* rhos = nullptr;         // vtrace: min(rho_clip, exp(log_rhos))
  const T* traces = nullptr;       // vtrace: lam * min(c_clip, exp(log_rhos))
  // forward: out0 = returns / advantages / vs, out1 = value targets / pg advantages
  T* out0 = nullptr;
  T* out1 = nullptr;
  // backward: grad_out0 / grad_out1 in (null = zero), grad_rewards / grad_values / grad_next_values out
  const T* grad_out0 = nullptr;
  const T* grad_out1 = nullptr;
  T* grad_rewards = nullptr;
  T* grad_values = nullptr;
  T* grad_next_values = nullptr;
};

// Calls f(EstimatorTag<estimator>{}, EstimatorFlag<gamma is an array>{}): both as compile-time
// constants, so each estimator gets its own loop.
template <class T, class F>
static inline void with_estimator(Estimator estimator, const ReturnsArgs<T>& a, F&& f) {
  auto with_gamma = [&](auto k) {
    if (a.gamma_array) f(k, EstimatorFlag<true>{});
    else f(k, EstimatorFlag<false>{});
  };
  switch (estimator) {
    case Estimator::discounted: with_gamma(EstimatorTag<Estimator::discounted>{}); break;
    case Estimator::lambda: with_gamma(EstimatorTag<Estimator::lambda>{}); break;
    case Estimator::gae: with_gamma(EstimatorTag<Estimator::gae>{}); break;
    case Estimator::n_step: with_gamma(EstimatorTag<Estimator::n_step>{}); break;
    case Estimator::vtrace: with_gamma(EstimatorTag<Estimator::vtrace>{}); break;
  }
}

// ---- per-element math (flat index i = t * B + b), shared by the CPU and CUDA kernels ----------

// kGammaArray: gamma is the [T, B] array (else the scalar); a template parameter so that the
// inner loops carry no branch
template <bool kGammaArray, class T>
NIMBLEOPS_RETURNS_FN T gamma_at(const ReturnsArgs<T>& a, int64_t i) {
  if (kGammaArray) return a.gamma_array[i];
  return a.gamma_scalar;
}
template <class T>
NIMBLEOPS_RETURNS_FN T not_terminated_at(const ReturnsArgs<T>& a, int64_t i) {
  return T(1) - T(a.terminated[i]);
}
// 1 when the recursion continues from step t to t + 1
template <class T>
NIMBLEOPS_RETURNS_FN T cont_at(const ReturnsArgs<T>& a, int64_t i, bool last) {
  return last ? T(0) : T(1) - T(a.terminated[i] | a.truncated[i]);
}
// Forward step of the backwards-in-time scan: out0[i] from `after` = out0 of step t + 1 (any
// value at the last step). For vtrace out0 holds vs - v here (see vtrace_finish_step).
template <Estimator estimator, bool kGammaArray, class T>
NIMBLEOPS_RETURNS_FN void forward_step(const ReturnsArgs<T>& a, int64_t i, bool last, T after) {
  const T g = gamma_at<kGammaArray>(a, i), nt = not_terminated_at(a, i), cont = cont_at(a, i, last);
  const T* r = a.rewards;
  const T* nv = a.next_values;
  if (last) after = T(0);
  switch (estimator) {  // a template parameter: resolved at compile time
    case Estimator::discounted:
      a.out0[i] = r[i] + g * nt * (cont * after + (T(1) - cont) * nv[i]);
      break;
    case Estimator::lambda:
      a.out0[i] = r[i] + g * nt * ((T(1) - a.lam) * nv[i] + a.lam * (cont * after + (T(1) - cont) * nv[i]));
      break;
    case Estimator::gae: {
      const T adv = r[i] + g * nt * nv[i] - a.values[i] + g * a.lam * cont * after;
      a.out0[i] = adv;
      a.out1[i] = adv + a.values[i];
      break;
    }
    case Estimator::vtrace:
      a.out0[i] = a.rhos[i] * (r[i] + g * nt * nv[i] - a.values[i]) + g * a.traces[i] * cont * after;
      break;
    default:
      break;
  }
}

// vtrace, once out0 holds vs - v for every step: pg advantage of step t from vs_{t+1}
// (acc_next = out0 of step t + 1, v_next = values of step t + 1; unused at the last step).
template <bool kGammaArray, class T>
NIMBLEOPS_RETURNS_FN void vtrace_pg_step(const ReturnsArgs<T>& a, int64_t i, bool last, T acc_next, T v_next) {
  const T g = gamma_at<kGammaArray>(a, i), nt = not_terminated_at(a, i), cont = cont_at(a, i, last);
  const T vs_next = last ? T(0) : v_next + acc_next;
  const T boot = cont * vs_next + (T(1) - cont) * a.next_values[i];
  a.out1[i] = a.rhos[i] * (a.rewards[i] + g * nt * boot - a.values[i]);
}

// Backward step of the forwards-in-time adjoint scan; carry / pg_carry hold what step t - 1
// passes on (0 at t = 0) and are updated for step t + 1.
template <Estimator estimator, bool kGammaArray, class T>
NIMBLEOPS_RETURNS_FN void backward_step(const ReturnsArgs<T>& a, int64_t i, bool last, T& carry, T& pg_carry) {
  const T g = gamma_at<kGammaArray>(a, i), nt = not_terminated_at(a, i), cont = cont_at(a, i, last);
  const T g0 = a.grad_out0 ? a.grad_out0[i] : T(0);
  const T g1 = a.grad_out1 ? a.grad_out1[i] : T(0);
  switch (estimator) {  // a template parameter: resolved at compile time
    case Estimator::discounted: {
      const T gx = g0 + carry;
      a.grad_rewards[i] = gx;
      a.grad_next_values[i] = g * nt * (T(1) - cont) * gx;
      carry = g * nt * cont * gx;
      break;
    }
    case Estimator::lambda: {
      const T gx = g0 + carry;
      a.grad_rewards[i] = gx;
      a.grad_next_values[i] = g * nt * ((T(1) - a.lam) + a.lam * (T(1) - cont)) * gx;
      carry = g * nt * a.lam * cont * gx;
      break;
    }
    case Estimator::gae: {
      const T gd = g0 + g1 + carry;
      a.grad_rewards[i] = gd;
      if (a.grad_values) a.grad_values[i] = g1 - gd;
      a.grad_next_values[i] = g * nt * gd;
      carry = g * a.lam * cont * gd;
      break;
    }
    case Estimator::vtrace: {
      const T rho = a.rhos[i], c = a.traces[i];
      const T gvs = g0 + pg_carry;
      const T gd = gvs + carry;
      a.grad_rewards[i] = rho * gd + rho * g1;
      if (a.grad_values) a.grad_values[i] = gvs - rho * gd - rho * g1;
      a.grad_next_values[i] = rho * g * nt * gd + rho * g * nt * (T(1) - cont) * g1;
      carry = g * c * cont * gd;
      pg_carry = rho * g * nt * cont * g1;
      break;
    }
    default:
      break;
  }
}

// n-step return of step t (column b) and, with grad, its adjoint scattered onto the window.
template <bool kGammaArray, class T>
NIMBLEOPS_RETURNS_FN void n_step_at(const ReturnsArgs<T>& a, int64_t t, int64_t b, bool grad) {
  const int64_t B = a.cols;
  const T gG = grad ? a.grad_out0[t * B + b] : T(0);
  T G = T(0), D = T(1), alive = T(1);
  for (int64_t k = 0; k < a.n && t + k < a.steps; ++k) {
    const int64_t j = (t + k) * B + b;
    const bool window_end = k == a.n - 1 || t + k == a.steps - 1;
    const T end = window_end ? T(1) : T(1) - cont_at(a, j, false);
    const T g = gamma_at<kGammaArray>(a, j);
    const T boot = end * D * g * not_terminated_at(a, j);
    if (grad) {
      a.grad_rewards[j] += alive * D * gG;
      a.grad_next_values[j] += alive * boot * gG;
    } else {
      G += alive * D * a.rewards[j];
      G += alive * boot * a.next_values[j];
    }
    D *= g;
    alive *= T(1) - end;
  }
  if (!grad) a.out0[t * B + b] = G;
}

}  // namespace rl
}  // namespace nimbleops
