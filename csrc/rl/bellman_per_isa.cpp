// Compiled once per SIMD level with that level's flags (see CMakeLists.txt), into its own
// namespace, so no inline function built for a wider ISA can leak into another level.
// Keep this file free of std:: templates for the same reason.
#include <cstdint>

#include "core/simd.h"
#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "rl/bellman_per_isa.h"

namespace nimbleops {
namespace rl {
namespace NIMBLEOPS_ISA_NS {
namespace {

using ::nimbleops::NIMBLEOPS_ISA_NS::vec::load;

// The dot product's summation order is defined over L lanes (16 for double, 32 for float):
//   acc[j] += p[i + j] * v[i + j] over whole blocks of L; then one half block into lanes < L/2;
//   then lanes folded in halves (lane j += lane j + L/2, then j + L/4, ...) down to one;
//   then the tail in index order.
// It is written with GCC vector extensions (element-wise semantics, whatever the ISA) of VB
// bytes: K = L / W accumulators of W lanes. The AVX-512 unit uses 64-byte vectors, the others
// 32-byte ones; both perform exactly the same additions, so every level gives the same bits.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#else
constexpr int kVectorBytes = 32;
#endif

typedef double f64x4 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef double f64x2 __attribute__((vector_size(16)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef float f32x2 __attribute__((vector_size(8)));

// Fold one vector's lanes in halves down to one lane.
inline double fold(f64x2 v) { return v[0] + v[1]; }
inline double fold(f64x4 v) { return fold(__builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3)); }
inline double fold(f64x8 v) {
  return fold(__builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7));
}
inline float fold(f32x2 v) { return v[0] + v[1]; }
inline float fold(f32x4 v) { return fold(__builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3)); }
inline float fold(f32x8 v) {
  return fold(__builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7));
}
inline float fold(f32x16 v) {
  return fold(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
              __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
}

template <class T, int VB> struct VecOf;
template <> struct VecOf<double, 32> { typedef f64x4 type; };
template <> struct VecOf<double, 64> { typedef f64x8 type; };
template <> struct VecOf<float, 32> { typedef f32x8 type; };
template <> struct VecOf<float, 64> { typedef f32x16 type; };


// The range of the values a pass saw: lane-wise running minimum and maximum (nan compares false
// and is skipped here; a row holding one has a nan sum, which the callers test).
template <class T>
struct Bounds {
  typedef typename VecOf<T, kVectorBytes>::type V;
  V lo = V{} + T(1), hi = V{};
  T tail_lo = T(1), tail_hi = T(0);

  // whether every value seen lies in [0, 1]
  bool within_unit() const {
    constexpr int W = kVectorBytes / int(sizeof(T));
    bool ok = tail_lo >= T(0) && tail_hi <= T(1);
    for (int j = 0; j < W; ++j) ok = ok && lo[j] >= T(0) && hi[j] <= T(1);
    return ok;
  }
};

// One pass over a row p[0..n): its dot product with v (kDot) and its sum (kSum), each in the
// fixed order described above (a pass computing both gives each the bits of the pass computing it
// alone), and with kRange the values' range folded into *bounds.
template <class T>
struct RowPass {
  T dot, sum;
};

template <class T, bool kDot, bool kSum, bool kRange>
inline RowPass<T> row_pass(const T* __restrict p, const T* __restrict v, int64_t n, Bounds<T>* bounds) {
  typedef typename VecOf<T, kVectorBytes>::type V;
  constexpr int W = kVectorBytes / int(sizeof(T));
  constexpr int L = 128 / int(sizeof(T));
  constexpr int K = L / W;
  // the first block initialises the lanes (no 0 + x: the same except that a -0 sum stays -0)
  V dot[K], sum[K];
  auto range = [&](V x) {
    if constexpr (kRange) {
      bounds->lo = x < bounds->lo ? x : bounds->lo;
      bounds->hi = x > bounds->hi ? x : bounds->hi;
    }
  };
  auto first = [&](int k, int64_t i) {
    const V x = load<V>(p + i);
    if constexpr (kDot) dot[k] = x * load<V>(v + i);
    if constexpr (kSum) sum[k] = x;
    range(x);
  };
  auto add = [&](int k, int64_t i) {
    const V x = load<V>(p + i);
    if constexpr (kDot) dot[k] += x * load<V>(v + i);
    if constexpr (kSum) sum[k] += x;
    range(x);
  };
  int64_t i = 0;
  if (n >= L) {
    for (int k = 0; k < K; ++k) first(k, k * W);
    i = L;
  } else {
    for (int k = 0; k < K; ++k) dot[k] = sum[k] = V{};
  }
  for (; i + L <= n; i += L)
    for (int k = 0; k < K; ++k) add(k, i + k * W);
  if (i + L / 2 <= n) {
    for (int k = 0; k < K / 2; ++k) add(k, i + k * W);
    i += L / 2;
  }
  for (int half = K / 2; half >= 1; half /= 2)
    for (int k = 0; k < half; ++k) {
      if constexpr (kDot) dot[k] += dot[k + half];
      if constexpr (kSum) sum[k] += sum[k + half];
    }
  RowPass<T> r{kDot ? fold(dot[0]) : T(0), kSum ? fold(sum[0]) : T(0)};
  for (; i < n; ++i) {
    if constexpr (kDot) r.dot += p[i] * v[i];
    if constexpr (kSum) r.sum += p[i];
    if constexpr (kRange) {
      bounds->tail_lo = p[i] < bounds->tail_lo ? p[i] : bounds->tail_lo;
      bounds->tail_hi = p[i] > bounds->tail_hi ? p[i] : bounds->tail_hi;
    }
  }
  return r;
}

template <class T>
inline T dot_fixed(const T* __restrict p, const T* __restrict v, int64_t n) {
  return row_pass<T, true, false, false>(p, v, n, nullptr).dot;
}

template <class T>
void q_state(const T* P_s, const T* R_s, const T* V, T gamma, int64_t S_next, int64_t A, T* q) {
  for (int64_t a = 0; a < A; ++a) q[a] = R_s[a] + gamma * dot_fixed<T>(P_s + a * S_next, V, S_next);
}

template <class T>
T dot(const T* p, const T* v, int64_t n) {
  return dot_fixed<T>(p, v, n);
}

// The optimality sweep over states [s0, s1) of one MDP, all inlined for this ISA. N > 0 makes
// the row length a compile-time constant (small MDPs); the arithmetic is the same. kCheck fuses
// the probability check into the pass that reads each row for the backup: the rows' range
// verdicts and largest sum are gathered over the whole range and tested once at its end.
template <class T, int N, bool kCheck>
void optimality_range_n(const T* __restrict P, const T* __restrict R, const T* __restrict V, T gamma,
                        int64_t S_runtime, int64_t A, int64_t s0, int64_t s1, T* __restrict V_out,
                        int64_t* __restrict policy, T* dmax, T* dmin, bool* check_passed, double max_sum) {
  const int64_t S = N > 0 ? N : S_runtime;
  T lmax = *dmax, lmin = *dmin;
  Bounds<T> bounds;
  T largest_sum = T(0), all_sums = T(0);  // a nan value makes its row's sum and all_sums nan
  auto q = [&](const T* P_s, const T* R_s, int64_t a) {
    const RowPass<T> r = row_pass<T, true, kCheck, kCheck>(P_s + a * S, V, S, &bounds);
    if constexpr (kCheck) {
      largest_sum = r.sum > largest_sum ? r.sum : largest_sum;
      all_sums += r.sum;
    }
    return R_s[a] + gamma * r.dot;
  };
  for (int64_t s = s0; s < s1; ++s) {
    const T* P_s = P + s * A * S;
    const T* R_s = R + s * A;
    T best = q(P_s, R_s, 0);
    int64_t arg = 0;
    for (int64_t a = 1; a < A; ++a) {
      const T qa = q(P_s, R_s, a);
      const bool greater = qa > best;  // branchless: the winner is unpredictable
      best = greater ? qa : best;
      arg = greater ? a : arg;
    }
    V_out[s] = best;
    if (policy) policy[s] = arg;
    const T d = best - V[s];
    lmax = d > lmax ? d : lmax;
    lmin = d < lmin ? d : lmin;
  }
  *dmax = lmax;
  *dmin = lmin;
  if constexpr (kCheck)
    *check_passed = bounds.within_unit() && all_sums == all_sums && double(largest_sum) <= max_sum;
}

// True when some x[i] is nan or +-inf: x - x is 0 exactly for finite x and nan otherwise, and
// nan != nan. Lane-wise masks OR-ed together keep it vectorised.
template <class T>
bool any_non_finite(const T* x, int64_t n) {
  typedef typename VecOf<T, kVectorBytes>::type V;
  typedef decltype(V{} != V{}) M;
  constexpr int W = kVectorBytes / int(sizeof(T));
  M bad0 = {}, bad1 = {};
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    V a = load<V>(x + i), b = load<V>(x + i + W);
    a -= a;
    b -= b;
    bad0 |= a != a;
    bad1 |= b != b;
  }
  bad0 |= bad1;
  bool any = false;
  for (int j = 0; j < W; ++j) any = any || bad0[j] != 0;
  for (; i < n; ++i) any = any || !(x[i] - x[i] == T(0));
  return any;
}

// Whether every p[j] is in [0, 1] (false for nan), and their sum in dot_fixed's order.
template <class T>
bool probability_row(const T* p, int64_t n, T* sum) {
  Bounds<T> bounds;
  const RowPass<T> r = row_pass<T, false, true, true>(p, nullptr, n, &bounds);
  *sum = r.sum;
  return bounds.within_unit() && r.sum == r.sum;
}

// How many of p[0..n) lie outside [0, hi) (the index checks' fast path; vectorised).
int64_t count_out_of_range(const int64_t* p, int64_t n, int64_t hi) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += (p[i] < 0) | (p[i] >= hi);
  return bad;
}

// Rows [r0, r1) of length n: the first row with a value outside [0, 1] (or nan) and the first
// whose sum exceeds max_sum (with that sum); r1 where none.
template <class T>
void probability_rows(const T* p, int64_t n, int64_t r0, int64_t r1, double max_sum, int64_t* bad_value,
                      int64_t* bad_sum, double* worst_sum) {
  *bad_value = *bad_sum = r1;
  for (int64_t r = r0; r < r1; ++r) {
    T sum;
    const bool ok = probability_row<T>(p + r * n, n, &sum);
    if (!ok && *bad_value == r1) *bad_value = r;
    if (ok && double(sum) > max_sum && *bad_sum == r1) {
      *bad_sum = r;
      *worst_sum = double(sum);
    }
  }
}

// V_out[s] = q(s, policy[s]) over states [s0, s1) of one MDP (actions already range-checked).
template <class T>
void expectation_range(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0, int64_t s1,
                       const int64_t* policy, T* V_out, T* dmax, T* dmin) {
  T lmax = *dmax, lmin = *dmin;
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t a = policy[s];
    const T v = R[s * A + a] + gamma * dot_fixed<T>(P + (s * A + a) * S, V, S);
    V_out[s] = v;
    const T d = v - V[s];
    lmax = d > lmax ? d : lmax;
    lmin = d < lmin ? d : lmin;
  }
  *dmax = lmax;
  *dmin = lmin;
}

template <class T, bool kCheck>
void optimality_range_dispatch(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0,
                               int64_t s1, T* V_out, int64_t* policy, T* dmax, T* dmin, bool* passed, double max_sum) {
  switch (S) {
#define NIMBLEOPS_OPTIMALITY_RANGE(n) \
  optimality_range_n<T, n, kCheck>(P, R, V, gamma, S, A, s0, s1, V_out, policy, dmax, dmin, passed, max_sum)
    case 8: return NIMBLEOPS_OPTIMALITY_RANGE(8);
    case 16: return NIMBLEOPS_OPTIMALITY_RANGE(16);
    case 32: return NIMBLEOPS_OPTIMALITY_RANGE(32);
    case 64: return NIMBLEOPS_OPTIMALITY_RANGE(64);
    default: return NIMBLEOPS_OPTIMALITY_RANGE(0);
#undef NIMBLEOPS_OPTIMALITY_RANGE
  }
}

template <class T>
void optimality_range(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0, int64_t s1,
                      T* V_out, int64_t* policy, T* dmax, T* dmin) {
  optimality_range_dispatch<T, false>(P, R, V, gamma, S, A, s0, s1, V_out, policy, dmax, dmin, nullptr, 0.0);
}

template <class T>
bool optimality_range_checked(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0,
                              int64_t s1, T* V_out, int64_t* policy, T* dmax, T* dmin, double max_sum) {
  bool passed = false;
  optimality_range_dispatch<T, true>(P, R, V, gamma, S, A, s0, s1, V_out, policy, dmax, dmin, &passed, max_sum);
  return passed;
}

}  // namespace

extern const DenseRowKernels<float> dense_rows_f32;
extern const DenseRowKernels<double> dense_rows_f64;
const DenseRowKernels<float> dense_rows_f32 = {&q_state<float>, &dot<float>, &optimality_range<float>,
                                                &optimality_range_checked<float>, &expectation_range<float>,
                                                &any_non_finite<float>, &probability_rows<float>,
                                                &count_out_of_range};
const DenseRowKernels<double> dense_rows_f64 = {&q_state<double>, &dot<double>, &optimality_range<double>,
                                                 &optimality_range_checked<double>, &expectation_range<double>,
                                                 &any_non_finite<double>, &probability_rows<double>,
                                                 &count_out_of_range};

}  // namespace NIMBLEOPS_ISA_NS

}  // namespace rl
}  // namespace nimbleops
