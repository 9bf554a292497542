// Pointwise (1x1) convolution GEMM kernels, compiled once per SIMD level (pointwise_per_isa.cpp) and
// picked at run time. Every output sums its K products in k order (forward, grad_input), and every
// weight-gradient partial in lane p % 16 in call order, whatever the thread count. They multiply-add
// with FMA where the level has it (the forward GEMM's two paths explicitly, so that they round
// alike in every build; the weight gradient by contraction, like the depthwise kernels): the last
// bits may differ between SIMD levels, never between runs or thread counts.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

constexpr int kStrip = 32;  // output columns (pixels) per micro-kernel call
constexpr int kPartLanes = 16;

template <class T>
struct PointwiseKernels {
  // C[i][c] = act(bias[i] + sum_{k < K} A[i * lda + k] * B[k][c]) for i < M, c < width <= kStrip,
  // where B[k] = brow[k] and C[i] = crow[i]; bias may be null; relu: max(., 0); pack: scratch of
  // K * kStrip elements (B is copied there contiguously, a column pass at a time, before the row
  // blocks read it). The columns go in passes of the level's register block (16 floats on AVX2,
  // the whole strip on AVX-512): up to the pass boundary past `width` (at most kStrip) are
  // computed, so B's and C's rows must have that many readable / writable elements.
  void (*gemm_strip)(const T* A, int64_t lda, int64_t M, int64_t K, const T* const* brow, T* const* crow,
                     const T* bias, bool relu, T* pack, int64_t width);
  // C[i][col] = act(bias[i] + sum_{k < K} A[i * lda + k] * x[k]) for i < M: gemm_strip's sum for
  // one column (each output its own accumulator over k in order, so the same bits), for calls of
  // too few columns to fill a pass
  void (*gemv_column)(const T* A, int64_t lda, int64_t M, int64_t K, const T* x, T* const* crow, int64_t col,
                      const T* bias, bool relu);
  // part[(i * N + j) * 16 + p % 16] += a_i[p] * b_j[p] for p < len, i < M <= 4, j < N <= 4
  void (*nt_accumulate)(const T* const* arow, const T* const* brow, int64_t M, int64_t N, int64_t len, T* part);
};

template <class T>
const PointwiseKernels<T>& pointwise_kernels();

}  // namespace vision
}  // namespace nimbleops
