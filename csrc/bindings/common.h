#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/view.h"

namespace nimbleops {
void bind_rl(pybind11::module_& m);
void bind_vision(pybind11::module_& m);

// The enum value named `s` among `names`; a ValueError naming `what` and the choices otherwise.
template <class E>
E parse_enum(const std::string& s, std::initializer_list<std::pair<const char*, E>> names, const char* what) {
  std::string choices;
  for (const auto& [name, value] : names) {
    if (s == name) return value;
    choices += (choices.empty() ? "'" : ", '") + std::string(name) + "'";
  }
  throw std::invalid_argument(std::string(what) + ": expected one of " + choices + ", got '" + s + "'");
}
}  // namespace nimbleops
