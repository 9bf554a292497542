// CUDA availability, queried without ever failing: a machine without a GPU or driver
// reports zero devices.
#pragma once
#include <string>

#include "nimbleops/runtime.h"  // cuda_device_count: 0 when no usable GPU/driver

namespace nimbleops {
std::string cuda_runtime_error();  // why, when cuda_device_count() == 0
}  // namespace nimbleops
