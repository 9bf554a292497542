// nimbleops C++ API: the kernels of the Python package nimbleops, for programs that embed them
// (LibTorch trainers, simulators, game engines) without Python. Link the CMake target
// nimbleops::nimbleops (find_package(nimbleops CONFIG); `python -m nimbleops --cmakedir` prints
// the directory to put in CMAKE_PREFIX_PATH or nimbleops_DIR).
//
//   nimbleops/view.h     View: pointer, shape, strides (in elements), dtype, device
//   nimbleops/runtime.h  version, threads, SIMD level, CUDA availability
//   nimbleops/rl.h       Bellman sweeps and solvers, return estimators, TD updates, traces
//   nimbleops/vision.h   depthwise / pointwise convolutions, channel shuffles, PS-RoI align / pool
//
// Errors are exceptions (std::invalid_argument, std::out_of_range) with the Python API's
// messages; a call that throws has written nothing.
#pragma once
#include "nimbleops/enums.h"
#include "nimbleops/rl.h"
#include "nimbleops/runtime.h"
#include "nimbleops/view.h"
#include "nimbleops/vision.h"
