// CPU return estimators: OpenMP over column blocks, the per-ISA kernels of returns_per_isa.cpp
// inside. Each column is scanned by one thread in a fixed order: results never depend on the
// thread count (nor on the SIMD level: element-wise arithmetic, no FMA contraction).
#include <atomic>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "rl/returns_api.h"
#include "rl/returns_per_isa.h"

namespace nimbleops {
namespace rl {

NIMBLEOPS_ISA_KERNEL_TABLES(ReturnsKernels, returns_kernels, returns)

namespace cpu {
namespace {

template <class F>
void over_columns(int64_t steps, int64_t cols, int64_t n, F&& f) {
  // blocks of whole vectors of columns; enough work per block to amortise the fork
  const int64_t grain = std::max<int64_t>(64, (1 << 16) / std::max<int64_t>(1, steps * n));
  const int64_t blocks = (cols + grain - 1) / grain;
  parallel_for(blocks, 1, [&](int64_t k0, int64_t k1) { f(k0 * grain, std::min(cols, k1 * grain)); });
}

}  // namespace

void returns_forward(const ReturnsViews& v, const View& out0, const std::optional<View>& out1) {
  NIMBLEOPS_CHECK(v.rewards.device < 0, "rewards: expected CPU arrays for the CPU kernels");
  NIMBLEOPS_DISPATCH_FLOATING(v.rewards.dtype, "rewards", [&] {
    ReturnsArgs<scalar_t> a = returns_args<scalar_t>(v);
    bind_outputs(v, a, out0, out1);
    const auto& k = returns_kernels<scalar_t>();
    std::atomic<bool> finite{true};
    over_columns(a.steps, a.cols, v.estimator == Estimator::n_step ? v.n : 1, [&](int64_t b0, int64_t b1) {
      if (!k.forward(v.estimator, a, b0, b1)) finite.store(false, std::memory_order_relaxed);
    });
    NIMBLEOPS_CHECK(finite.load(), "rewards: expected finite rewards, found nan or inf");
  });
}

void returns_backward(const ReturnsViews& v, const std::optional<View>& grad_out0, const std::optional<View>& grad_out1,
                      const View& grad_rewards, const std::optional<View>& grad_values, const View& grad_next_values) {
  NIMBLEOPS_CHECK(v.rewards.device < 0, "rewards: expected CPU arrays for the CPU kernels");
  NIMBLEOPS_CHECK(v.estimator != Estimator::n_step || grad_out0, "internal: n-step backward needs grad_out0");
  NIMBLEOPS_DISPATCH_FLOATING(v.rewards.dtype, "rewards", [&] {
    ReturnsArgs<scalar_t> a = returns_args<scalar_t>(v);
    bind_gradients(v, a, grad_out0, grad_out1, grad_rewards, grad_values, grad_next_values);
    const auto& k = returns_kernels<scalar_t>();
    over_columns(a.steps, a.cols, v.estimator == Estimator::n_step ? v.n : 1,
                 [&](int64_t b0, int64_t b1) { k.backward(v.estimator, a, b0, b1); });
  });
}

}  // namespace cpu
}  // namespace rl
}  // namespace nimbleops
