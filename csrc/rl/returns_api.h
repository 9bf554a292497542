// Entry points of the return estimators, one set per device. The Python wrapper hands over the
// canonical layout: every [T, B] array contiguous, masks bool, gamma a scalar or a [T, B] array.
#pragma once
#include <optional>

#include "core/check.h"
#include "nimbleops/rl.h"
#include "rl/returns.h"

namespace nimbleops {
namespace rl {

// Shapes, dtypes, contiguity and devices of the inputs (values and log_rhos where the estimator
// needs them): the one check of a call's inputs, run where its ReturnsViews is built (the
// binding's ReturnsInputs); the kernels take the views as checked.
inline void validate_returns(const ReturnsViews& v) {
  NIMBLEOPS_CHECK(v.rewards.ndim() == 2, "rewards: expected the canonical [T, B] layout, got shape ", shape_str(v.rewards));
  const int64_t n = v.rewards.numel();
  const DType dt = v.rewards.dtype;
  NIMBLEOPS_CHECK(dt == DType::float32 || dt == DType::float64, "rewards: expected float32 or float64, got ",
                  dtype_name(dt));
  check_contiguous(v.rewards, "rewards");
  auto like_rewards = [&](const View& x, const char* name) { check_like(x, v.rewards, name, "rewards"); };
  like_rewards(v.next_values, "next_values");
  check_like(v.terminated, v.rewards, "terminated", "rewards", n, DType::boolean);
  check_like(v.truncated, v.rewards, "truncated", "rewards", n, DType::boolean);
  const bool needs_values = v.estimator == Estimator::gae || v.estimator == Estimator::vtrace;
  NIMBLEOPS_CHECK(!needs_values || v.values, "values: required by this estimator");
  if (v.values) like_rewards(*v.values, "values");
  NIMBLEOPS_CHECK(v.estimator != Estimator::vtrace || (v.rhos && v.traces), "rhos, traces: required by vtrace");
  if (v.rhos) like_rewards(*v.rhos, "rhos");
  if (v.traces) like_rewards(*v.traces, "traces");
  if (v.gamma) like_rewards(*v.gamma, "gamma");
  NIMBLEOPS_CHECK(v.n >= 1, "n: expected an integer >= 1, got ", v.n);
}

// args with the inputs of v filled in (outputs and gradients left to the caller)
template <class T>
ReturnsArgs<T> returns_args(const ReturnsViews& v) {
  ReturnsArgs<T> a;
  a.steps = v.rewards.shape[0];
  a.cols = v.rewards.shape[1];
  a.rewards = v.rewards.ptr<T>();
  a.values = v.values ? v.values->ptr<T>() : nullptr;
  a.next_values = v.next_values.ptr<T>();
  a.terminated = v.terminated.ptr<uint8_t>();
  a.truncated = v.truncated.ptr<uint8_t>();
  a.gamma_array = v.gamma ? v.gamma->ptr<T>() : nullptr;
  a.gamma_scalar = T(v.gamma_scalar);
  a.lam = T(v.lam);
  a.n = v.n;
  a.rhos = v.rhos ? v.rhos->ptr<T>() : nullptr;
  a.traces = v.traces ? v.traces->ptr<T>() : nullptr;
  return a;
}

#define NIMBLEOPS_RETURNS_DEVICE_API(ns)                                                              \
  namespace ns {                                                                                      \
  /* out0 [T, B]; out1 [T, B] for gae and vtrace. The CPU kernel raises where a reward is nan or */   \
  /* inf (checked in its pass); the caller checks the rewards of the CUDA kernel */                   \
  void returns_forward(const ReturnsViews& v, const View& out0, const std::optional<View>& out1);     \
  /* grads of rewards, values (gae, vtrace; optional) and next_values from those of the outputs */   \
  void returns_backward(const ReturnsViews& v, const std::optional<View>& grad_out0,                  \
                        const std::optional<View>& grad_out1, const View& grad_rewards,               \
                        const std::optional<View>& grad_values, const View& grad_next_values);        \
  }

NIMBLEOPS_RETURNS_DEVICE_API(cpu)
#ifdef NIMBLEOPS_WITH_CUDA
NIMBLEOPS_RETURNS_DEVICE_API(cuda)
#endif

// The output / gradient views, checked against the inputs, written into args.
template <class T>
void bind_outputs(const ReturnsViews& v, ReturnsArgs<T>& a, const View& out0, const std::optional<View>& out1) {
  auto out = [&](const View& x, const char* name) {
    check_like(x, v.rewards, name, "rewards");
    return x.ptr<T>();
  };
  a.out0 = out(out0, "out");
  const bool two = v.estimator == Estimator::gae || v.estimator == Estimator::vtrace;
  NIMBLEOPS_CHECK(!two || out1, "internal: this estimator has two outputs");
  a.out1 = out1 ? out(*out1, "out1") : nullptr;
}

template <class T>
void bind_gradients(const ReturnsViews& v, ReturnsArgs<T>& a, const std::optional<View>& grad_out0,
                    const std::optional<View>& grad_out1, const View& grad_rewards,
                    const std::optional<View>& grad_values, const View& grad_next_values) {
  auto arr = [&](const View& x, const char* name) {
    check_like(x, v.rewards, name, "rewards");
    return x.ptr<T>();
  };
  a.grad_out0 = grad_out0 ? arr(*grad_out0, "grad_out0") : nullptr;
  a.grad_out1 = grad_out1 ? arr(*grad_out1, "grad_out1") : nullptr;
  a.grad_rewards = arr(grad_rewards, "grad_rewards");
  a.grad_values = grad_values ? arr(*grad_values, "grad_values") : nullptr;
  a.grad_next_values = arr(grad_next_values, "grad_next_values");
}

}  // namespace rl
}  // namespace nimbleops
