// CUDA eligibility-trace steps (rl/traces_api.h), the CPU's arithmetic in the CPU's order per
// cell / weight: one thread per environment (TD error, trace bump, decay), then one thread per
// cell or weight summing the environments in order (deterministic, no atomics).
#include <cuda_runtime.h>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "rl/traces_api.h"

namespace nimbleops {
namespace rl {
namespace cuda {
namespace {

template <class T>
struct TabularArgs {
  T* Q;
  T* e;
  const int64_t *s, *sn, *a, *an;
  const T* r;
  const uint8_t *term, *trunc;
  int64_t S, A, B;
  T alpha, gamma, lam;
  TraceRule rule;
  TraceKind kind;
};

// per environment: delta from Q as it is, the trace bump, alpha * delta and the decay factor
template <class T>
__global__ void tabular_env_kernel(TabularArgs<T> p, T* delta, T* ad, T* decay) {
  NIMBLEOPS_GRID_LOOP(b, p.B) {
    const bool actions = p.rule != TraceRule::td_lambda;
    const int64_t ab = actions ? p.a[b] : 0, anb = actions ? p.an[b] : 0;
    if (p.s[b] < 0 || p.s[b] >= p.S || p.sn[b] < 0 || p.sn[b] >= p.S || ab < 0 || ab >= p.A || anb < 0 ||
        anb >= p.A) {  // validated by the caller; skipped here so nothing is out of bounds
      delta[b] = ad[b] = T(0);
      decay[b] = T(1);
      continue;
    }
    const T* next = p.Q + p.sn[b] * p.A;
    T m = next[0];
    for (int64_t k = 1; k < p.A; ++k) m = next[k] > m ? next[k] : m;
    const T boot = p.rule == TraceRule::watkins_q_lambda ? m : next[anb];
    delta[b] = p.r[b] + p.gamma * (T(1) - T(p.term[b])) * boot - p.Q[p.s[b] * p.A + ab];
    T& cell = p.e[(b * p.S + p.s[b]) * p.A + ab];
    switch (p.kind) {
      case TraceKind::accumulating: cell += T(1); break;
      case TraceKind::replacing: cell = T(1); break;
      case TraceKind::dutch: cell = (T(1) - p.alpha) * cell + T(1); break;
    }
    const bool done = p.term[b] || p.trunc[b];
    const bool cut = p.rule == TraceRule::watkins_q_lambda && next[anb] < m;
    decay[b] = (done || cut) ? T(0) : p.gamma * p.lam;
    ad[b] = p.alpha * delta[b];
  }
}

template <class T>
__global__ void tabular_cell_kernel(TabularArgs<T> p, const T* ad, const T* decay) {
  const int64_t cells = p.S * p.A;
  NIMBLEOPS_GRID_LOOP(c, cells) {
    T q = p.Q[c];
    for (int64_t b = 0; b < p.B; ++b) {
      T* eb = p.e + b * cells;
      q += ad[b] * eb[c];
      eb[c] *= decay[b];
    }
    p.Q[c] = q;
  }
}

template <class T>
struct LinearArgs {
  T* w;
  T* z;
  T* vold;
  const T *phi, *phin, *r;
  const uint8_t *term, *trunc;
  int64_t B, d;
  T alpha, gamma, lam;
  LinearRule rule;
};

template <class T>
__device__ T dot(const T* a, const T* b, int64_t d) {
  T s = T(0);
  for (int64_t j = 0; j < d; ++j) s += a[j] * b[j];
  return s;
}

// per environment: delta, the trace step, the coefficients of z_b and phi_b in the weight update
template <class T>
__global__ void linear_env_kernel(LinearArgs<T> p, T* delta, T* cz, T* cphi, T* keep) {
  NIMBLEOPS_GRID_LOOP(b, p.B) {
    const T* ph = p.phi + b * p.d;
    const T* pn = p.phin + b * p.d;
    const T vs = dot(p.w, ph, p.d), vn = dot(p.w, pn, p.d);
    delta[b] = p.r[b] + p.gamma * (T(1) - T(p.term[b])) * vn - vs;
    cz[b] = cphi[b] = T(0);
    keep[b] = T(1);
    if (p.rule == LinearRule::td0) {
      cphi[b] = p.alpha * delta[b];
      continue;
    }
    T* zb = p.z + b * p.d;
    T c = T(1);
    if (p.rule == LinearRule::true_online) c = T(1) - p.alpha * p.gamma * p.lam * dot(zb, ph, p.d);
    for (int64_t j = 0; j < p.d; ++j) zb[j] = p.gamma * p.lam * zb[j] + c * ph[j];
    if (p.rule == LinearRule::td_lambda) {
      cz[b] = p.alpha * delta[b];
    } else {
      cz[b] = p.alpha * (delta[b] + vs - p.vold[b]);
      cphi[b] = -p.alpha * (vs - p.vold[b]);
      p.vold[b] = (p.term[b] || p.trunc[b]) ? T(0) : vn;
    }
    keep[b] = (p.term[b] || p.trunc[b]) ? T(0) : T(1);
  }
}

template <class T>
__global__ void linear_weight_kernel(LinearArgs<T> p, const T* cz, const T* cphi) {
  NIMBLEOPS_GRID_LOOP(j, p.d) {
    T w = p.w[j];
    for (int64_t b = 0; b < p.B; ++b) {
      if (p.rule == LinearRule::td0)
        w += T(0) + cphi[b] * p.phi[b * p.d + j];
      else
        w += cz[b] * p.z[b * p.d + j] + cphi[b] * p.phi[b * p.d + j];
    }
    p.w[j] = w;
  }
}

template <class T>
__global__ void linear_reset_kernel(LinearArgs<T> p, const T* keep) {
  const int64_t total = p.B * p.d;
  NIMBLEOPS_GRID_LOOP(e, total)
    if (keep[e / p.d] == T(0)) p.z[e] = T(0);
}

// scratch on the stream: `count` arrays of n elements
template <class T>
struct Scratch {
  T* data = nullptr;
  cudaStream_t stream;
  Scratch(int64_t count, int64_t n, cudaStream_t s) : stream(s) {
    NIMBLEOPS_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data), sizeof(T) * size_t(count * n), stream));
  }
  ~Scratch() { cudaFreeAsync(data, stream); }
};

}  // namespace

void tabular_trace_step(const TabularTraceViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.Q.ndim() == 2 && v.e.ndim() == 3, "internal: Q [S, A] and e [B, S, A] expected");
  const int dev = v.Q.device;
  NIMBLEOPS_CHECK(dev >= 0, "Q: expected a CUDA tensor for the CUDA kernels");
  const int64_t S = v.Q.shape[0], A = v.Q.shape[1], B = v.e.shape[0];
  const DType dt = v.Q.dtype;
  check_device_array(v.Q, dt, S * A, "Q", dev);
  check_device_array(v.e, dt, B * S * A, "e", dev);
  check_device_array(v.s, DType::int64, B, "s", dev);
  check_device_array(v.s_next, DType::int64, B, "s_next", dev);
  const bool actions = v.rule != TraceRule::td_lambda;
  if (actions) {
    NIMBLEOPS_CHECK(v.a && v.a_next, "a, a_next: required");
    check_device_array(*v.a, DType::int64, B, "a", dev);
    check_device_array(*v.a_next, DType::int64, B, "a_next", dev);
  }
  check_device_array(v.rewards, dt, B, "r", dev);
  check_device_array(v.terminated, DType::boolean, B, "terminated", dev);
  check_device_array(v.truncated, DType::boolean, B, "truncated", dev);
  check_device_array(td_errors, dt, B, "td_errors", dev);
  if (B == 0) return;
  CudaDeviceGuard guard(dev);
  const auto stream = reinterpret_cast<cudaStream_t>(v.stream);
  NIMBLEOPS_DISPATCH_FLOATING(dt, "Q", [&] {
    using T = scalar_t;
    TabularArgs<T> p{v.Q.ptr<T>(), v.e.ptr<T>(), v.s.ptr<int64_t>(), v.s_next.ptr<int64_t>(),
                     actions ? v.a->ptr<int64_t>() : nullptr, actions ? v.a_next->ptr<int64_t>() : nullptr,
                     v.rewards.ptr<T>(), v.terminated.ptr<uint8_t>(), v.truncated.ptr<uint8_t>(), S, A, B,
                     T(v.alpha), T(v.gamma), T(v.lam), v.rule, v.kind};
    Scratch<T> scratch(2, B, stream);
    tabular_env_kernel<T><<<grid_blocks(B), kGridThreads, 0, stream>>>(p, td_errors.ptr<T>(), scratch.data,
                                                                  scratch.data + B);
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
    tabular_cell_kernel<T><<<grid_blocks(S * A), kGridThreads, 0, stream>>>(p, scratch.data, scratch.data + B);
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

void linear_td_step(const LinearTraceViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.phi.ndim() == 2, "internal: phi [B, d] expected");
  const int dev = v.w.device;
  NIMBLEOPS_CHECK(dev >= 0, "w: expected a CUDA tensor for the CUDA kernels");
  const int64_t B = v.phi.shape[0], d = v.phi.shape[1];
  const DType dt = v.w.dtype;
  check_device_array(v.w, dt, d, "w", dev);
  check_device_array(v.phi, dt, B * d, "phi", dev);
  check_device_array(v.phi_next, dt, B * d, "phi_next", dev);
  check_device_array(v.rewards, dt, B, "r", dev);
  check_device_array(v.terminated, DType::boolean, B, "terminated", dev);
  check_device_array(td_errors, dt, B, "td_errors", dev);
  const bool traces = v.rule != LinearRule::td0;
  if (traces) {
    NIMBLEOPS_CHECK(v.z && v.truncated, "z, truncated: required");
    check_device_array(*v.z, dt, B * d, "z", dev);
    check_device_array(*v.truncated, DType::boolean, B, "truncated", dev);
  }
  if (v.rule == LinearRule::true_online) {
    NIMBLEOPS_CHECK(v.v_old.has_value(), "v_old: required by true online TD(lambda)");
    check_device_array(*v.v_old, dt, B, "v_old", dev);
  }
  if (B == 0) return;
  CudaDeviceGuard guard(dev);
  const auto stream = reinterpret_cast<cudaStream_t>(v.stream);
  NIMBLEOPS_DISPATCH_FLOATING(dt, "w", [&] {
    using T = scalar_t;
    LinearArgs<T> p{v.w.ptr<T>(), traces ? v.z->ptr<T>() : nullptr,
                    v.rule == LinearRule::true_online ? v.v_old->ptr<T>() : nullptr, v.phi.ptr<T>(),
                    v.phi_next.ptr<T>(), v.rewards.ptr<T>(), v.terminated.ptr<uint8_t>(),
                    traces ? v.truncated->ptr<uint8_t>() : nullptr, B, d, T(v.alpha), T(v.gamma), T(v.lam), v.rule};
    Scratch<T> scratch(3, B, stream);
    T *cz = scratch.data, *cphi = scratch.data + B, *keep = scratch.data + 2 * B;
    linear_env_kernel<T><<<grid_blocks(B), kGridThreads, 0, stream>>>(p, td_errors.ptr<T>(), cz, cphi, keep);
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
    if (d > 0) {
      linear_weight_kernel<T><<<grid_blocks(d), kGridThreads, 0, stream>>>(p, cz, cphi);
      NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
      if (traces) {
        linear_reset_kernel<T><<<grid_blocks(B * d), kGridThreads, 0, stream>>>(p, keep);
        NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
      }
    }
  });
}

}  // namespace cuda
}  // namespace rl
}  // namespace nimbleops
