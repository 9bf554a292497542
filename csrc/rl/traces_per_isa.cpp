// Per-ISA loops of the trace steps (rl/traces_per_isa.h); see core/isa_unit.h.
#include "core/isa_unit.h"
#include "rl/traces_per_isa.h"

namespace nimbleops {
namespace rl {
namespace NIMBLEOPS_ISA_NS {
namespace {

template <class T>
void fused_update(T* Q, T* e, int64_t B, int64_t cells, int64_t c0, int64_t c1, const T* ad, const T* decay) {
  for (int64_t b = 0; b < B; ++b) {
    T* eb = e + b * cells;
    const T a = ad[b], k = decay[b];
#pragma GCC ivdep
    for (int64_t c = c0; c < c1; ++c) {
      Q[c] += a * eb[c];
      eb[c] *= k;
    }
  }
}

template <class T>
void scale_add(T* z, const T* p, int64_t d, T a, T c) {
#pragma GCC ivdep
  for (int64_t j = 0; j < d; ++j) z[j] = a * z[j] + c * p[j];
}

template <class T>
void weight_update(T* w, const T* z, const T* phi, int64_t B, int64_t d, int64_t j0, int64_t j1, const T* cz,
                   const T* cphi) {
  for (int64_t b = 0; b < B; ++b) {
    const T* p = phi + b * d;
    const T cp = cphi[b];
    if (z) {
      const T* zb = z + b * d;
      const T c = cz[b];
#pragma GCC ivdep
      for (int64_t j = j0; j < j1; ++j) w[j] += c * zb[j] + cp * p[j];
    } else {
#pragma GCC ivdep
      for (int64_t j = j0; j < j1; ++j) w[j] += T(0) + cp * p[j];
    }
  }
}

}  // namespace

extern const TraceKernels<float> traces_f32;
extern const TraceKernels<double> traces_f64;
const TraceKernels<float> traces_f32 = {&fused_update<float>, &scale_add<float>, &weight_update<float>};
const TraceKernels<double> traces_f64 = {&fused_update<double>, &scale_add<double>, &weight_update<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace rl
}  // namespace nimbleops
