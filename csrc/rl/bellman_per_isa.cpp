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

typedef unsigned long long u64x4 __attribute__((vector_size(32)));
typedef unsigned long long u64x8 __attribute__((vector_size(64)));
typedef unsigned u32x8 __attribute__((vector_size(32)));
typedef unsigned u32x16 __attribute__((vector_size(64)));

// the vector of VB bytes of T, the unsigned integer vector of its bits, and one lane's bits
template <class T, int VB> struct VecOf;
template <> struct VecOf<double, 32> { typedef f64x4 type; typedef u64x4 bits; typedef unsigned long long bit; };
template <> struct VecOf<double, 64> { typedef f64x8 type; typedef u64x8 bits; typedef unsigned long long bit; };
template <> struct VecOf<float, 32> { typedef f32x8 type; typedef u32x8 bits; typedef unsigned bit; };
template <> struct VecOf<float, 64> { typedef f32x16 type; typedef u32x16 bits; typedef unsigned bit; };


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

// The unsigned maximum of the bits of the values a pass saw. Every value lies in [+0, 1] exactly
// when that maximum is at most the bits of 1: a negative value (-0 included) has its sign bit, and
// nan, inf and values above 1 have larger bits. Integer lanes make it one cheap operation per
// vector; -0 fails it although it passes the exact check (Bounds), which callers run on failure.
template <class T>
struct BitsMax {
  typedef typename VecOf<T, kVectorBytes>::type V;
  typedef typename VecOf<T, kVectorBytes>::bits U;
  U hi = U{};
  typename VecOf<T, kVectorBytes>::bit tail = 0;

  void see(V x) {
    const U u = (U)x;
    hi = u > hi ? u : hi;
  }
  void see(T x) {
    typename VecOf<T, kVectorBytes>::bit u;
    __builtin_memcpy(&u, &x, sizeof(T));
    tail = u > tail ? u : tail;
  }
  bool within_unit() const {
    constexpr int W = kVectorBytes / int(sizeof(T));
    const T one = T(1);
    typename VecOf<T, kVectorBytes>::bit limit;
    __builtin_memcpy(&limit, &one, sizeof(T));
    bool ok = tail <= limit;
    for (int j = 0; j < W; ++j) ok = ok && hi[j] <= limit;
    return ok;
  }
};

// Bounds as a pass's range policy, and a policy that sees nothing.
template <class T>
struct BoundsRange {
  Bounds<T>* b;
  void see(typename VecOf<T, kVectorBytes>::type x) {
    b->lo = x < b->lo ? x : b->lo;
    b->hi = x > b->hi ? x : b->hi;
  }
  void see(T x) {
    b->tail_lo = x < b->tail_lo ? x : b->tail_lo;
    b->tail_hi = x > b->tail_hi ? x : b->tail_hi;
  }
};
struct NoRange {
  template <class X>
  void see(X) {}
};
template <bool kFirst, class A, class B>
struct Pick {
  typedef A type;
};
template <class A, class B>
struct Pick<false, A, B> {
  typedef B type;
};

// x, held in a register from here on: the compiler would otherwise read it from memory again for
// each use (the product, the sum, the range), and a checked pass would issue three loads per
// vector where the load ports are what bounds it.
template <class V>
inline V in_register(V x) {
#if defined(__AVX__)
  asm("" : "+v"(x));
#endif
  return x;
}

// One pass over a row p[0..n) in the fixed order described above, up to the lanes' fold: the
// dot product with v (kDot) and the sum (kSum) as one vector each whose lanes, folded in halves,
// give the row's value; every value read is shown to range.see. The elements past the last half
// block (n % (L / 2) of them) are left to the caller, which adds them after the fold.
template <class T>
struct RowLanes {
  typename VecOf<T, kVectorBytes>::type dot, sum;
};

template <class T, bool kDot, bool kSum, class Range>
inline RowLanes<T> row_lanes(const T* __restrict p, const T* __restrict v, int64_t n, Range& range) {
  typedef typename VecOf<T, kVectorBytes>::type V;
  constexpr int W = kVectorBytes / int(sizeof(T));
  constexpr int L = 128 / int(sizeof(T));
  constexpr int K = L / W;
  // the first block initialises the lanes (no 0 + x: the same except that a -0 sum stays -0)
  V dot[K], sum[K];
  auto first = [&](int k, int64_t i) {
    const V x = in_register(load<V>(p + i));
    if constexpr (kDot) dot[k] = x * load<V>(v + i);
    if constexpr (kSum) sum[k] = x;
    range.see(x);
  };
  auto add = [&](int k, int64_t i) {
    const V x = in_register(load<V>(p + i));
    if constexpr (kDot) dot[k] += x * load<V>(v + i);
    if constexpr (kSum) sum[k] += x;
    range.see(x);
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
  if (i + L / 2 <= n)
    for (int k = 0; k < K / 2; ++k) add(k, i + k * W);
  for (int half = K / 2; half >= 1; half /= 2)
    for (int k = 0; k < half; ++k) {
      if constexpr (kDot) dot[k] += dot[k + half];
      if constexpr (kSum) sum[k] += sum[k + half];
    }
  return RowLanes<T>{dot[0], sum[0]};
}

// Where row_lanes stops: the start of the elements it leaves to the caller.
template <class T>
constexpr int64_t lanes_end(int64_t n) {
  return n - n % (64 / int64_t(sizeof(T)));
}

// One pass over a row p[0..n): its dot product with v (kDot) and its sum (kSum), each in the
// fixed order described above (a pass computing both gives each the bits of the pass computing it
// alone), every value shown to range.see.
template <class T>
struct RowPass {
  T dot, sum;
};

template <class T, bool kDot, bool kSum, class Range>
inline RowPass<T> row_pass(const T* __restrict p, const T* __restrict v, int64_t n, Range& range) {
  const RowLanes<T> lanes = row_lanes<T, kDot, kSum>(p, v, n, range);
  RowPass<T> r{kDot ? fold(lanes.dot) : T(0), kSum ? fold(lanes.sum) : T(0)};
  for (int64_t i = lanes_end<T>(n); i < n; ++i) {
    if constexpr (kDot) r.dot += p[i] * v[i];
    if constexpr (kSum) r.sum += p[i];
    range.see(p[i]);
  }
  return r;
}

// fold() of W vectors at once: lane i of the result is in[i]'s lanes folded in halves, with the
// same additions as fold(in[i]) (so the same bits), in log2(W) levels of two shuffles and one
// addition instead of log2(W) of each per vector. A level pairs vectors whose lanes form segments
// of s, one per input still to fold; the pair's result holds both vectors' segments halved.
template <int... I>
struct Lanes {};
template <int N, int... I>
struct MakeLanes : MakeLanes<N - 1, N - 1, I...> {};
template <int... I>
struct MakeLanes<0, I...> {
  typedef Lanes<I...> type;
};

// the source lane (of x's W, then y's W) of output lane o's first (half = 0) or second addend
template <int W, int s, int o, int half>
constexpr int fold_source() {
  return (o / (s / 2) < W / s ? 0 : W) + ((o / (s / 2)) % (W / s)) * s + half * (s / 2) + o % (s / 2);
}

template <int s, class V, int... O>
inline V fold_pair(V x, V y, Lanes<O...>) {
  constexpr int W = sizeof...(O);
  return __builtin_shufflevector(x, y, fold_source<W, s, O, 0>()...) +
         __builtin_shufflevector(x, y, fold_source<W, s, O, 1>()...);
}

template <int s, int count, class V, class O>
inline V fold_levels(V* in, O lanes) {
  for (int i = 0; i < count / 2; ++i) in[i] = fold_pair<s>(in[2 * i], in[2 * i + 1], lanes);
  if constexpr (count == 2)
    return in[0];
  else
    return fold_levels<s / 2, count / 2>(in, lanes);
}

// in[0..W) -> lane i holds fold(in[i]); in is overwritten
template <class T>
inline typename VecOf<T, kVectorBytes>::type fold_lanes(typename VecOf<T, kVectorBytes>::type* in) {
  constexpr int W = kVectorBytes / int(sizeof(T));
  return fold_levels<W, W>(in, typename MakeLanes<W>::type{});
}

template <class T>
inline T dot_fixed(const T* __restrict p, const T* __restrict v, int64_t n) {
  NoRange none;
  return row_pass<T, true, false>(p, v, n, none).dot;
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
// the probability check into the pass that reads each row for the backup: the values' bits
// maximum (BitsMax) and the largest row sum are gathered over the whole range and tested once at
// its end.
//
// Short rows (N > 0 without a tail past the half blocks) are read in groups of rows whose lanes
// fold together (fold_lanes: a row's dot, and its sum when checking, become one lane each), a
// block of whole states at a time; the states then take their maxima from the block's dots.
template <class T, int N>
constexpr bool kGroupedRows = N > 0 && N % (64 / int(sizeof(T))) == 0;
constexpr int64_t kGroupBlockRows = 128;

template <class T, int N, bool kCheck>
void optimality_range_n(const T* __restrict P, const T* __restrict R, const T* __restrict V, T gamma,
                        int64_t S_runtime, int64_t A, int64_t s0, int64_t s1, T* __restrict V_out,
                        int64_t* __restrict policy, T* dmax, T* dmin, bool* check_passed, double max_sum) {
  typedef typename VecOf<T, kVectorBytes>::type Vec;
  constexpr int W = kVectorBytes / int(sizeof(T));
  constexpr int G = kCheck ? W / 2 : W;  // rows per group
  const int64_t S = N > 0 ? N : S_runtime;
  T lmax = *dmax, lmin = *dmin;
  typename Pick<kCheck, BitsMax<T>, NoRange>::type range;
  T largest_sum = T(0);
  Vec largest_sums = Vec{};  // lanes G.. of the grouped rows' folds are their sums
  // one row's q value, through row_pass
  auto q = [&](const T* P_s, const T* R_s, int64_t a) {
    const RowPass<T> r = row_pass<T, true, kCheck>(P_s + a * S, V, S, range);
    if constexpr (kCheck) largest_sum = r.sum > largest_sum ? r.sum : largest_sum;
    return R_s[a] + gamma * r.dot;
  };
  // state s's backup from its q values q_of(a): the maximum (ties to the lowest action), its
  // action and its change
  auto finish_state = [&](int64_t s, auto&& q_of) {
    T best = q_of(int64_t(0));
    int64_t arg = 0;
    for (int64_t a = 1; a < A; ++a) {
      const T qa = q_of(a);
      const bool greater = qa > best;  // branchless: the winner is unpredictable
      best = greater ? qa : best;
      arg = greater ? a : arg;
    }
    V_out[s] = best;
    if (policy) policy[s] = arg;
    const T d = best - V[s];
    lmax = d > lmax ? d : lmax;
    lmin = d < lmin ? d : lmin;
  };
  if (kGroupedRows<T, N> && A <= kGroupBlockRows) {
    const int64_t block_states = kGroupBlockRows / A;
    T dots[kGroupBlockRows + W];  // W - G lanes of slack past the last group's dots
    for (int64_t s = s0; s < s1; s += block_states) {
      const int64_t e = s1 - s < block_states ? s1 : s + block_states, rows = (e - s) * A;
      const T* Pb = P + s * A * S;
      int64_t r = 0;
      for (; r + G <= rows; r += G) {
        Vec in[W];
        for (int g = 0; g < G; ++g) {
          const RowLanes<T> l = row_lanes<T, true, kCheck>(Pb + (r + g) * S, V, S, range);
          in[g] = l.dot;
          if constexpr (kCheck) in[G + g] = l.sum;
        }
        const Vec folded = fold_lanes<T>(in);
        if constexpr (kCheck) largest_sums = folded > largest_sums ? folded : largest_sums;
        __builtin_memcpy(dots + r, &folded, sizeof(Vec));
      }
      for (; r < rows; ++r) {
        const RowPass<T> rp = row_pass<T, true, kCheck>(Pb + r * S, V, S, range);
        if constexpr (kCheck) largest_sum = rp.sum > largest_sum ? rp.sum : largest_sum;
        dots[r] = rp.dot;
      }
      for (int64_t st = s; st < e; ++st) {
        const T* d = dots + (st - s) * A;
        const T* R_s = R + st * A;
        finish_state(st, [&](int64_t a) { return R_s[a] + gamma * d[a]; });
      }
    }
  } else {
    for (int64_t s = s0; s < s1; ++s) {
      const T* P_s = P + s * A * S;
      const T* R_s = R + s * A;
      finish_state(s, [&](int64_t a) { return q(P_s, R_s, a); });
    }
  }
  *dmax = lmax;
  *dmin = lmin;
  if constexpr (kCheck) {
    for (int j = G; j < W; ++j) largest_sum = largest_sums[j] > largest_sum ? largest_sums[j] : largest_sum;
    // a nan value fails the bits test, so a nan sum skipped by the maxima does not matter
    *check_passed = range.within_unit() && double(largest_sum) <= max_sum;
  }
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
  BoundsRange<T> range{&bounds};
  const RowPass<T> r = row_pass<T, false, true>(p, nullptr, n, range);
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
