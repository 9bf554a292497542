// CPU eligibility-trace steps (rl/traces_api.h): TD errors per environment, then one fused pass
// over the traces, parallel over cells (or weights), summing over the environments in order and
// decaying the traces in the same pass.
#include <algorithm>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "rl/bellman_api.h"  // all_finite, check_index_range
#include "rl/bellman_per_isa.h"  // the vectorised dot product
#include "core/simd.h"
#include "rl/traces_api.h"
#include "rl/traces_per_isa.h"

namespace nimbleops {
namespace rl {

NIMBLEOPS_ISA_KERNEL_TABLES(TraceKernels, trace_kernels, traces)

namespace cpu {
namespace {

void check_rewards_finite(const View& r) {
  NIMBLEOPS_CHECK(all_finite(r), "r: expected finite rewards, found nan or inf");
}

}  // namespace

void tabular_trace_step(const TabularTraceViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.Q.ndim() == 2 && v.e.ndim() == 3, "internal: Q [S, A] and e [B, S, A] expected");
  const int64_t S = v.Q.shape[0], A = v.Q.shape[1], B = v.e.shape[0];
  const DType dt = v.Q.dtype;
  check_host_array(v.Q, dt, S * A, "Q");
  check_host_array(v.e, dt, B * S * A, "e");
  NIMBLEOPS_CHECK(v.e.shape[1] == S && v.e.shape[2] == A, "e: expected traces [B, S, A] = [", B, ", ", S, ", ", A,
                  "], got ", shape_str(v.e));
  check_index_range(v.s, S, "s", B);
  check_index_range(v.s_next, S, "s_next", B);
  const bool actions = v.rule != TraceRule::td_lambda;
  if (actions) {
    NIMBLEOPS_CHECK(v.a && v.a_next, "a, a_next: required");
    check_index_range(*v.a, A, "a", B);
    check_index_range(*v.a_next, A, "a_next", B);
  }
  check_host_array(v.rewards, dt, B, "r");
  check_host_array(v.terminated, DType::boolean, B, "terminated");
  check_host_array(v.truncated, DType::boolean, B, "truncated");
  check_host_array(td_errors, dt, B, "td_errors");
  check_rewards_finite(v.rewards);
  NIMBLEOPS_DISPATCH_FLOATING(dt, "Q", [&] {
    using T = scalar_t;
    T* Q = v.Q.ptr<T>();
    T* e = v.e.ptr<T>();
    const int64_t *s = v.s.ptr<int64_t>(), *sn = v.s_next.ptr<int64_t>();
    const int64_t* a = actions ? v.a->ptr<int64_t>() : nullptr;
    const int64_t* an = actions ? v.a_next->ptr<int64_t>() : nullptr;
    const T* r = v.rewards.ptr<T>();
    const uint8_t *term = v.terminated.ptr<uint8_t>(), *trunc = v.truncated.ptr<uint8_t>();
    const T alpha = T(v.alpha), gamma = T(v.gamma), lam = T(v.lam);
    T* delta = td_errors.ptr<T>();
    std::vector<T> decay(B);
    // 1. TD errors from the table as it is; trace bumps; per-environment decay factor
    for (int64_t b = 0; b < B; ++b) {
      const int64_t ab = actions ? a[b] : 0, anb = actions ? an[b] : 0;
      const T* next = Q + sn[b] * A;
      T m = next[0];
      for (int64_t k = 1; k < A; ++k) m = next[k] > m ? next[k] : m;
      const T boot = v.rule == TraceRule::watkins_q_lambda ? m : next[anb];
      delta[b] = r[b] + gamma * (T(1) - T(term[b])) * boot - Q[s[b] * A + ab];
      T& cell = e[(b * S + s[b]) * A + ab];
      switch (v.kind) {
        case TraceKind::accumulating: cell += T(1); break;
        case TraceKind::replacing: cell = T(1); break;
        case TraceKind::dutch: cell = (T(1) - alpha) * cell + T(1); break;
      }
      const bool done = term[b] || trunc[b];
      const bool cut = v.rule == TraceRule::watkins_q_lambda && next[anb] < m;
      decay[b] = (done || cut) ? T(0) : gamma * lam;
    }
    // 2. Q += alpha sum_b delta_b e_b and e_b *= decay_b, fused, parallel over cells
    std::vector<T> ad(B);
    for (int64_t b = 0; b < B; ++b) ad[b] = alpha * delta[b];
    const int64_t cells = S * A;
    const auto& k = trace_kernels<T>();
    parallel_for(cells, std::max<int64_t>(256, 65536 / std::max<int64_t>(B, 1)),
                 [&](int64_t c0, int64_t c1) { k.fused_update(Q, e, B, cells, c0, c1, ad.data(), decay.data()); });
  });
}

void linear_td_step(const LinearTraceViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.phi.ndim() == 2, "internal: phi [B, d] expected");
  const int64_t B = v.phi.shape[0], d = v.phi.shape[1];
  const DType dt = v.w.dtype;
  check_host_array(v.w, dt, d, "w");
  check_host_array(v.phi, dt, B * d, "phi");
  check_host_array(v.phi_next, dt, B * d, "phi_next");
  check_host_array(v.rewards, dt, B, "r");
  check_host_array(v.terminated, DType::boolean, B, "terminated");
  check_host_array(td_errors, dt, B, "td_errors");
  const bool traces = v.rule != LinearRule::td0;
  if (traces) {
    NIMBLEOPS_CHECK(v.z && v.truncated, "z, truncated: required");
    check_host_array(*v.z, dt, B * d, "z");
    check_host_array(*v.truncated, DType::boolean, B, "truncated");
  }
  if (v.rule == LinearRule::true_online) {
    NIMBLEOPS_CHECK(v.v_old.has_value(), "v_old: required by true online TD(lambda)");
    check_host_array(*v.v_old, dt, B, "v_old");
  }
  check_rewards_finite(v.rewards);
  NIMBLEOPS_DISPATCH_FLOATING(dt, "w", [&] {
    using T = scalar_t;
    T* w = v.w.ptr<T>();
    const T *phi = v.phi.ptr<T>(), *phin = v.phi_next.ptr<T>(), *r = v.rewards.ptr<T>();
    const uint8_t* term = v.terminated.ptr<uint8_t>();
    const uint8_t* trunc = traces ? v.truncated->ptr<uint8_t>() : nullptr;
    T* z = traces ? v.z->ptr<T>() : nullptr;
    T* vold = v.rule == LinearRule::true_online ? v.v_old->ptr<T>() : nullptr;
    const T alpha = T(v.alpha), gamma = T(v.gamma), lam = T(v.lam);
    T* delta = td_errors.ptr<T>();
    const auto dot = dense_row_kernels<T>().dot;  // vectorised, fixed summation order
    const auto& k = trace_kernels<T>();
    // coefficient of z_b and of phi_b in the weight update, and the trace step, per environment
    std::vector<T> cz(B, T(0)), cphi(B, T(0)), keep(B, T(1));
    parallel_for(B, 16, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const T* p = phi + b * d;
        const T* pn = phin + b * d;
        const T vs = dot(w, p, d), vn = dot(w, pn, d);
        delta[b] = r[b] + gamma * (T(1) - T(term[b])) * vn - vs;
        if (!traces) {
          cphi[b] = alpha * delta[b];
          continue;
        }
        T* zb = z + b * d;
        if (v.rule == LinearRule::td_lambda) {
          k.scale_add(zb, p, d, gamma * lam, T(1));
          cz[b] = alpha * delta[b];
        } else {
          const T zphi = dot(zb, p, d);
          const T c = T(1) - alpha * gamma * lam * zphi;
          k.scale_add(zb, p, d, gamma * lam, c);
          cz[b] = alpha * (delta[b] + vs - vold[b]);
          cphi[b] = -alpha * (vs - vold[b]);
          vold[b] = (term[b] || trunc[b]) ? T(0) : vn;
        }
        keep[b] = (term[b] || trunc[b]) ? T(0) : T(1);
      }
    });
    // w += sum_b (cz_b z_b + cphi_b phi_b), summed over b in order; then reset traces where done
    parallel_for(d, 64, [&](int64_t j0, int64_t j1) {
      k.weight_update(w, traces ? z : nullptr, phi, B, d, j0, j1, cz.data(), cphi.data());
    });
    if (traces)
      for (int64_t b = 0; b < B; ++b)
        if (keep[b] == T(0)) std::fill(z + b * d, z + (b + 1) * d, T(0));
  });
}

}  // namespace cpu
}  // namespace rl
}  // namespace nimbleops
