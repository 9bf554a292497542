#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/view.h"

namespace nimbleops {
void bind_rl(pybind11::module_& m);
void bind_vision(pybind11::module_& m);
}  // namespace nimbleops
