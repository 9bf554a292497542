// dtype dispatch: runs the body with scalar_t bound to float or double.
#pragma once
#include "core/check.h"

#define NIMBLEOPS_DISPATCH_FLOATING(DTYPE, NAME, ...)                                       \
  [&] {                                                                                    \
    switch (DTYPE) {                                                                       \
      case ::nimbleops::DType::float32: { using scalar_t = float; return __VA_ARGS__(); }  \
      case ::nimbleops::DType::float64: { using scalar_t = double; return __VA_ARGS__(); } \
      default:                                                                             \
        throw std::invalid_argument(::nimbleops::concat(NAME, ": expected float32 or float64, got ", \
                                                        ::nimbleops::dtype_name(DTYPE)));  \
    }                                                                                      \
  }()
