// Pointwise convolution: the one check and the per-device entry points (semantics in
// nimbleops/vision.h, beside PointwiseViews).
#pragma once
#include <cstdint>
#include <optional>

#include "core/check.h"
#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {

// The one check of a call: shapes, dtypes, devices and sizes; stores the shape in v.
void check_pointwise(PointwiseViews& v);

// the output channel position of channel co
inline int64_t shuffled_position(int64_t co, int64_t Cout, int64_t s) {
  return s > 1 ? (co % (Cout / s)) * s + co / (Cout / s) : co;
}

namespace cpu {
void pointwise_forward(const PointwiseViews& v, const View& out);
// out: the forward's output (needed with relu); gradients may be absent
void pointwise_backward(const PointwiseViews& v, const View& grad_out, const std::optional<View>& out,
                        const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                        const std::optional<View>& grad_b);
// The forward's GEMM over rows anywhere in memory (the shuffle stage's units read and write
// channels where they lie): for each image n < N, C_n[i] = act(bias[i] + sum_k weight[i * K + k]
// B_n[k]) over HW columns, i < M, k < K, with row k of B_n at in_rows[n * K + k] and row i of C_n
// at out_rows[n * M + i]; no output row may overlap an input row; bias may be null.
template <class T>
void pointwise_gemm_rows(int64_t N, int64_t HW, int64_t M, int64_t K, const T* weight, const T* bias, bool relu,
                         const T* const* in_rows, T* const* out_rows);
}  // namespace cpu
namespace cuda {
void pointwise_forward(const PointwiseViews& v, const View& out);
void pointwise_backward(const PointwiseViews& v, const View& grad_out, const std::optional<View>& out,
                        const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                        const std::optional<View>& grad_b);
}  // namespace cuda

}  // namespace vision
}  // namespace nimbleops
