// Per-ISA GEMM kernels of the pointwise convolution (vision/pointwise_rows.h); see core/isa_unit.h.
#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/pointwise_rows.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

// MR rows x kStrip columns in registers (2 vectors of 16 per row)
template <int MR, class T>
inline void micro(const T* A, int64_t lda, int64_t K, const T* const* brow, T* const* crow, const T* bias, bool relu) {
  typedef typename Vec<T, 16>::type V;
  V acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = V{} + (bias ? bias[i] : T(0));
  for (int64_t k = 0; k < K; ++k) {
    const V b0 = load<V>(brow[k]), b1 = load<V>(brow[k] + 16);
    for (int i = 0; i < MR; ++i) {
      const T a = A[i * lda + k];
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
  }
  for (int i = 0; i < MR; ++i) {
    if (relu) {
      const V zero = V{};
      acc[i][0] = acc[i][0] > zero ? acc[i][0] : zero;
      acc[i][1] = acc[i][1] > zero ? acc[i][1] : zero;
    }
    store(crow[i], acc[i][0]);
    store(crow[i] + 16, acc[i][1]);
  }
}

template <class T>
void gemm_strip(const T* A, int64_t lda, int64_t M, int64_t K, const T* const* brow, T* const* crow, const T* bias,
                bool relu) {
  constexpr int MR = sizeof(T) == 4 ? 12 : 6;  // 24 accumulator registers (double: two per vector)
  int64_t i = 0;
  for (; i + MR <= M; i += MR) micro<MR>(A + i * lda, lda, K, brow, crow + i, bias ? bias + i : nullptr, relu);
  const T* a = A + i * lda;
  const T* b = bias ? bias + i : nullptr;
  if (M - i >= 6) {
    micro<6>(a, lda, K, brow, crow + i, b, relu);
    i += 6;
    a = A + i * lda;
    b = bias ? bias + i : nullptr;
  }
  switch (M - i) {
    case 5: micro<5>(a, lda, K, brow, crow + i, b, relu); break;
    case 4: micro<4>(a, lda, K, brow, crow + i, b, relu); break;
    case 3: micro<3>(a, lda, K, brow, crow + i, b, relu); break;
    case 2: micro<2>(a, lda, K, brow, crow + i, b, relu); break;
    case 1: micro<1>(a, lda, K, brow, crow + i, b, relu); break;
    default: break;
  }
}

template <int MM, int NN, class T>
inline void nt_block(const T* const* arow, const T* const* brow, int64_t len, T* part, int64_t N) {
  typedef typename Vec<T, 16>::type V;
  V acc[MM][NN];
  for (int i = 0; i < MM; ++i)
    for (int j = 0; j < NN; ++j) acc[i][j] = load<V>(part + (i * N + j) * 16);
  int64_t p = 0;
  for (; p + 16 <= len; p += 16) {
    V a[MM], b[NN];
    for (int i = 0; i < MM; ++i) a[i] = load<V>(arow[i] + p);
    for (int j = 0; j < NN; ++j) b[j] = load<V>(brow[j] + p);
    for (int i = 0; i < MM; ++i)
      for (int j = 0; j < NN; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < MM; ++i)
    for (int j = 0; j < NN; ++j) store(part + (i * N + j) * 16, acc[i][j]);
  for (int64_t l = 0; p < len; ++p, ++l)  // the tail: lane p % 16 as well
    for (int i = 0; i < MM; ++i)
      for (int j = 0; j < NN; ++j) part[(i * N + j) * 16 + l] += arow[i][p] * brow[j][p];
}

template <class T>
void nt_accumulate(const T* const* arow, const T* const* brow, int64_t M, int64_t N, int64_t len, T* part) {
  if (M == 4 && N == 4) return nt_block<4, 4>(arow, brow, len, part, N);
  for (int64_t i = 0; i < M; ++i)  // edges of the tiling: one row at a time
    for (int64_t j = 0; j < N; ++j) {
      const T* a = arow[i];
      const T* b = brow[j];
      nt_block<1, 1>(&a, &b, len, part + (i * N + j) * 16, 1);
    }
}

}  // namespace

extern const PointwiseKernels<float> pointwise_f32;
extern const PointwiseKernels<double> pointwise_f64;
const PointwiseKernels<float> pointwise_f32 = {&gemm_strip<float>, &nt_accumulate<float>};
const PointwiseKernels<double> pointwise_f64 = {&gemm_strip<double>, &nt_accumulate<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
