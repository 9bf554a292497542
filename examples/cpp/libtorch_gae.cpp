// nimbleops from a LibTorch program, without Python: GAE over a PPO-sized rollout [T, B] held in
// ATen tensors. A tensor reaches the kernels as a nimbleops::View of its data_ptr(), sizes(),
// strides(), dtype and device; nothing is copied. The kernels need the layouts nimbleops/rl.h
// states (here: contiguous [T, B], bool masks), which .contiguous() and .to(at::kBool) give.
// CUDA tensors work the same way when nimbleops was built with CUDA: set the views' stream to
// at::cuda::getCurrentCUDAStream().stream() (cast to uintptr_t) to stay on PyTorch's stream.
#include <cstdio>
#include <stdexcept>

#include <ATen/ATen.h>
#include <nimbleops/nimbleops.h>

namespace {

nimbleops::View view_of(const at::Tensor& t) {
  nimbleops::View v;
  v.data = t.data_ptr();
  switch (t.scalar_type()) {
    case at::kFloat: v.dtype = nimbleops::DType::float32; break;
    case at::kDouble: v.dtype = nimbleops::DType::float64; break;
    case at::kInt: v.dtype = nimbleops::DType::int32; break;
    case at::kLong: v.dtype = nimbleops::DType::int64; break;
    case at::kBool: v.dtype = nimbleops::DType::boolean; break;
    default: throw std::invalid_argument("view_of: a dtype nimbleops does not take");
  }
  v.device = t.is_cuda() ? t.get_device() : -1;
  v.shape.assign(t.sizes().begin(), t.sizes().end());
  v.strides.assign(t.strides().begin(), t.strides().end());
  return v;
}

}  // namespace

int main() {
  constexpr int64_t T = 128, B = 1024;
  constexpr double kGamma = 0.99, kLambda = 0.95;
  at::manual_seed(0);
  const at::Tensor rewards = at::randn({T, B}, at::kFloat);
  const at::Tensor values = at::randn({T, B}, at::kFloat);
  const at::Tensor next_values = at::randn({T, B}, at::kFloat);
  const at::Tensor terminated = at::rand({T, B}) < 0.01;
  const at::Tensor truncated = (at::rand({T, B}) < 0.005).logical_and(terminated.logical_not());
  at::Tensor advantages = at::empty_like(rewards), targets = at::empty_like(rewards);

  nimbleops::rl::ReturnsViews rollout;
  rollout.estimator = nimbleops::rl::Estimator::gae;
  rollout.rewards = view_of(rewards);
  rollout.values = view_of(values);
  rollout.next_values = view_of(next_values);
  rollout.terminated = view_of(terminated);
  rollout.truncated = view_of(truncated);
  rollout.gamma_scalar = kGamma;
  rollout.lam = kLambda;
  nimbleops::rl::estimate_returns(rollout, view_of(advantages), view_of(targets));

  // the same recursion in ATen ops, one time step at a time
  const at::Tensor keep = terminated.logical_not().to(at::kFloat);
  const at::Tensor cont = terminated.logical_or(truncated).logical_not().to(at::kFloat);
  at::Tensor expected = at::empty_like(rewards), next = at::zeros({B}, at::kFloat);
  for (int64_t t = T - 1; t >= 0; --t) {
    const at::Tensor delta = rewards[t] + kGamma * keep[t] * next_values[t] - values[t];
    const at::Tensor carry = t < T - 1 ? cont[t] * next : at::zeros({B}, at::kFloat);
    next = delta + kGamma * kLambda * carry;
    expected[t] = next;
  }
  const double worst = (advantages - expected).abs().max().item<double>();
  const double worst_targets = (targets - (expected + values)).abs().max().item<double>();
  std::printf("libtorch gae: T=%lld B=%lld float32, max |nimbleops - ATen loop| = %.2e (targets %.2e)\n",
              static_cast<long long>(T), static_cast<long long>(B), worst, worst_targets);
  const bool ok = worst < 1e-4 && worst_targets < 1e-4;
  std::printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
