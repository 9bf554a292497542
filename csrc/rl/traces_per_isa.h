// Trace-step inner loops, compiled once per SIMD level (traces_per_isa.cpp) and picked at run time.
// Element-wise arithmetic only: every level gives the same bits.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace rl {

template <class T>
struct TraceKernels {
  // for b in [0, B): Q[c] += ad[b] * e_b[c]; e_b[c] *= decay[b], over cells [c0, c1)
  // (e_b = e + b * cells); environments in order, so each cell sums them in that order
  void (*fused_update)(T* Q, T* e, int64_t B, int64_t cells, int64_t c0, int64_t c1, const T* ad, const T* decay);
  // z[j] = a * z[j] + c * p[j], j in [0, d)
  void (*scale_add)(T* z, const T* p, int64_t d, T a, T c);
  // for b in [0, B): w[j] += cz[b] * z_b[j] + cphi[b] * phi_b[j], j in [j0, j1) (z may be null)
  void (*weight_update)(T* w, const T* z, const T* phi, int64_t B, int64_t d, int64_t j0, int64_t j1, const T* cz,
                        const T* cphi);
};

template <class T>
const TraceKernels<T>& trace_kernels();

}  // namespace rl
}  // namespace nimbleops
