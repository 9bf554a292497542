// Per-ISA GEMM kernels of the pointwise convolution (vision/pointwise_per_isa.h); see core/isa_unit.h.
#include <algorithm>
#include <cstdint>

#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/pointwise_per_isa.h"

#if defined(__FMA__)
#include <immintrin.h>
#endif

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

// acc + a * b, rounded once where the level has FMA (twice elsewhere). Explicit rather than left to
// contraction, which is an optimisation (builds at -O1 skip it): the strips and the column path
// must round alike in every build.
template <class T>
inline T multiply_add(T a, T b, T acc) {
#if defined(__FMA__)
  if constexpr (sizeof(T) == sizeof(float))
    return __builtin_fmaf(a, b, acc);
  else
    return __builtin_fma(a, b, acc);
#else
  return acc + a * b;
#endif
}

// the same for a value a times each lane of one of the level's vectors b (a pure broadcast of a,
// from memory where a is)
template <class V, class T>
inline V multiply_add_broadcast(T a, V b, V acc) {
#if defined(__FMA__)
  constexpr bool f32 = sizeof(T) == sizeof(float);
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64) return f32 ? (V)_mm512_fmadd_ps(_mm512_set1_ps(float(a)), (__m512)b, (__m512)acc)
                                            : (V)_mm512_fmadd_pd(_mm512_set1_pd(double(a)), (__m512d)b, (__m512d)acc);
#endif
  if constexpr (sizeof(V) == 32) return f32 ? (V)_mm256_fmadd_ps(_mm256_set1_ps(float(a)), (__m256)b, (__m256)acc)
                                            : (V)_mm256_fmadd_pd(_mm256_set1_pd(double(a)), (__m256d)b, (__m256d)acc);
  if constexpr (sizeof(V) == 16) return f32 ? (V)_mm_fmadd_ps(_mm_set1_ps(float(a)), (__m128)b, (__m128)acc)
                                            : (V)_mm_fmadd_pd(_mm_set1_pd(double(a)), (__m128d)b, (__m128d)acc);
#endif
  return acc + a * b;
}

// The micro-kernel's register block: MR rows x NV vectors of RL = one register's lanes; a strip's
// kStrip columns take kStrip / (NV * RL) passes. 32 registers: the whole strip (float: 12 rows x 2
// zmm), 16 registers: 6 rows x 2 vectors (AVX2 float: 6 x 16 columns, two passes); both leave
// room for the NV values of B and the broadcast of A.
template <class T>
struct Blocking {
  static constexpr int RL = register_lanes<T, kStrip>();
  static constexpr int NV = kRegisters >= 32 ? kStrip / RL : 2;
  static constexpr int MR = kRegisters >= 32 ? 24 / NV : 6;
};

// MR rows x the NV * RL columns of one column pass in registers; b: that pass of B packed, row k
// at b + k * NV * RL
template <int MR, class T>
inline void micro(const T* A, int64_t lda, int64_t K, const T* b, T* const* crow, int64_t c0, const T* bias,
                  bool relu) {
  constexpr int RL = Blocking<T>::RL, NV = Blocking<T>::NV;
  typedef typename Vec<T, RL>::type V;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = V{} + (bias ? bias[i] : T(0));
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load<V>(b + k * (NV * RL) + v * RL);
    for (int i = 0; i < MR; ++i) {
      const T a = A[i * lda + k];
      for (int v = 0; v < NV; ++v) acc[i][v] = multiply_add_broadcast(a, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) {
      if (relu) {
        const V zero = V{};
        acc[i][v] = acc[i][v] > zero ? acc[i][v] : zero;
      }
      store(crow[i] + c0 + v * RL, acc[i][v]);
    }
}

// One column pass [c0, c0 + W) of the strip: B's K rows of W columns copied contiguously into
// pack (the row blocks then read one sequential panel instead of K rows a row pitch apart, which
// contend for the L1 sets), then every block of MR rows, then the last M % MR rows
template <class T>
void gemm_pass(const T* A, int64_t lda, int64_t M, int64_t K, const T* const* brow, T* const* crow, int64_t c0,
               const T* bias, bool relu, T* pack) {
  constexpr int W = Blocking<T>::NV * Blocking<T>::RL, MR = Blocking<T>::MR;
  typedef typename Vec<T, Blocking<T>::RL>::type V;
  for (int64_t k = 0; k < K; ++k)
    for (int v = 0; v < Blocking<T>::NV; ++v)
      store(pack + k * W + v * Blocking<T>::RL, load<V>(brow[k] + c0 + v * Blocking<T>::RL));
  // While the row blocks run, the next pass's columns of B (W further along each of its K rows,
  // a row pitch apart: a gather the hardware prefetchers do not follow) are prefetched, spread
  // evenly over the blocks. The addresses are computed as integers: past a row's end (the last
  // pass) they point at no object, and a prefetch there reads nothing.
  const int64_t blocks = M / MR, per_block = blocks > 0 ? (K + blocks - 1) / blocks : 0;
  int64_t i = 0, kp = 0;
  for (; i + MR <= M; i += MR) {
    for (const int64_t kend = std::min(K, kp + per_block); kp < kend; ++kp) {
      const uintptr_t next = reinterpret_cast<uintptr_t>(brow[kp]) + uintptr_t(c0 + W) * sizeof(T);
      for (uintptr_t e = 0; e < W * sizeof(T); e += 64) __builtin_prefetch(reinterpret_cast<const void*>(next + e), 0, 2);
    }
    micro<MR>(A + i * lda, lda, K, pack, crow + i, c0, bias ? bias + i : nullptr, relu);
  }
  const T* a = A + i * lda;
  const T* b = bias ? bias + i : nullptr;
  if (M - i >= 6) {
    micro<6>(a, lda, K, pack, crow + i, c0, b, relu);
    i += 6;
    a = A + i * lda;
    b = bias ? bias + i : nullptr;
  }
  switch (M - i) {
    case 5: micro<5>(a, lda, K, pack, crow + i, c0, b, relu); break;
    case 4: micro<4>(a, lda, K, pack, crow + i, c0, b, relu); break;
    case 3: micro<3>(a, lda, K, pack, crow + i, c0, b, relu); break;
    case 2: micro<2>(a, lda, K, pack, crow + i, c0, b, relu); break;
    case 1: micro<1>(a, lda, K, pack, crow + i, c0, b, relu); break;
    default: break;
  }
}

template <class T>
void gemm_strip(const T* A, int64_t lda, int64_t M, int64_t K, const T* const* brow, T* const* crow, const T* bias,
                bool relu, T* pack, int64_t width) {
  constexpr int W = Blocking<T>::NV * Blocking<T>::RL;
  for (int64_t c0 = 0; c0 < width; c0 += W) gemm_pass(A, lda, M, K, brow, crow, c0, bias, relu, pack);
}

// R rows of one column: R independent accumulators, each summed as micro() sums its lane (0 +
// bias, then multiply_add in k order), so the bits are the strip's
template <int R, class T>
inline void gemv_rows(const T* A, int64_t lda, int64_t K, const T* x, T* const* crow, int64_t col, const T* bias,
                      bool relu) {
  T acc[R];
  for (int j = 0; j < R; ++j) acc[j] = T(0) + (bias ? bias[j] : T(0));
  for (int64_t k = 0; k < K; ++k) {
    const T xk = x[k];
    for (int j = 0; j < R; ++j) acc[j] = multiply_add(A[j * lda + k], xk, acc[j]);
  }
  for (int j = 0; j < R; ++j) {
    T v = acc[j];
    if (relu) v = v > T(0) ? v : T(0);
    crow[j][col] = v;
  }
}

template <class T>
void gemv_column(const T* A, int64_t lda, int64_t M, int64_t K, const T* x, T* const* crow, int64_t col,
                 const T* bias, bool relu) {
  constexpr int R = 8;
  int64_t i = 0;
  for (; i + R <= M; i += R) gemv_rows<R>(A + i * lda, lda, K, x, crow + i, col, bias ? bias + i : nullptr, relu);
  for (; i < M; ++i) gemv_rows<1>(A + i * lda, lda, K, x, crow + i, col, bias ? bias + i : nullptr, relu);
}

// MM x NN partials, lanes [lb, lb + RL) of each group of 16: the vector part of nt_accumulate
template <int MM, int NN, int RL, class T>
inline void nt_block(const T* const* arow, const T* const* brow, int64_t len, T* part, int64_t N, int lb) {
  typedef typename Vec<T, RL>::type V;
  V acc[MM][NN];
  for (int i = 0; i < MM; ++i)
    for (int j = 0; j < NN; ++j) acc[i][j] = load<V>(part + (i * N + j) * kPartLanes + lb);
  for (int64_t p = 0; p + kPartLanes <= len; p += kPartLanes) {
    V a[MM], b[NN];
    for (int i = 0; i < MM; ++i) a[i] = load<V>(arow[i] + p + lb);
    for (int j = 0; j < NN; ++j) b[j] = load<V>(brow[j] + p + lb);
    for (int i = 0; i < MM; ++i)
      for (int j = 0; j < NN; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < MM; ++i)
    for (int j = 0; j < NN; ++j) store(part + (i * N + j) * kPartLanes + lb, acc[i][j]);
}

// the last len % 16 products: lane p % 16 as well
template <class T>
inline void nt_tail(const T* const* arow, const T* const* brow, int64_t M, int64_t N, int64_t len, T* part) {
  for (int64_t p = len - len % kPartLanes, l = 0; p < len; ++p, ++l)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) part[(i * N + j) * kPartLanes + l] += arow[i][p] * brow[j][p];
}

// 4 x 4 tiles: 32 registers: 16 sums of 16 lanes at once; 16 registers: 4 x 2 sums of one
// register's lanes per pass (the a and b rows of a pass and its sums fit the registers)
template <class T>
void nt_accumulate(const T* const* arow, const T* const* brow, int64_t M, int64_t N, int64_t len, T* part) {
  constexpr int RL = register_lanes<T, kPartLanes>();
  if (M == 4 && N == 4) {
    for (int lb = 0; lb < kPartLanes; lb += RL) {
      if (kRegisters >= 32) {
        nt_block<4, 4, RL>(arow, brow, len, part, N, lb);
      } else {
        nt_block<4, 2, RL>(arow, brow, len, part, N, lb);
        nt_block<4, 2, RL>(arow, brow + 2, len, part + 2 * kPartLanes, N, lb);
      }
    }
  } else {
    for (int64_t i = 0; i < M; ++i)  // edges of the tiling: one partial at a time
      for (int64_t j = 0; j < N; ++j)
        for (int lb = 0; lb < kPartLanes; lb += RL)
          nt_block<1, 1, RL>(arow + i, brow + j, len, part + (i * N + j) * kPartLanes, 1, lb);
  }
  nt_tail(arow, brow, M, N, len, part);
}

}  // namespace

extern const PointwiseKernels<float> pointwise_f32;
extern const PointwiseKernels<double> pointwise_f64;
const PointwiseKernels<float> pointwise_f32 = {&gemm_strip<float>, &gemv_column<float>, &nt_accumulate<float>};
const PointwiseKernels<double> pointwise_f64 = {&gemm_strip<double>, &gemv_column<double>, &nt_accumulate<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
