// The public API's device dispatch: `return` a call of the CPU or the CUDA entry point of the
// enclosing namespace, as the arrays live on the host or a device; a build without CUDA refuses
// device arrays by name.
#pragma once
#include <stdexcept>
#include <string>

namespace nimbleops {

[[noreturn]] inline void refuse_cuda_arrays(const char* what) {
  throw std::invalid_argument(std::string(what) + ": got CUDA arrays, but this nimbleops was built without CUDA");
}

}  // namespace nimbleops

#ifdef NIMBLEOPS_WITH_CUDA
#define NIMBLEOPS_ON_DEVICE(on_cuda, what, call) return (on_cuda) ? cuda::call : cpu::call
#else
#define NIMBLEOPS_ON_DEVICE(on_cuda, what, call) \
  if (on_cuda) ::nimbleops::refuse_cuda_arrays(what); \
  return cpu::call
#endif
