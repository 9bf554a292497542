// The ops' plain calls: one binding call that takes the Python arrays themselves, checks them in
// C++ and runs the kernel, for the common case of a call (numpy arrays, or plain CPU torch tensors
// outside autograd and capture). A plain call answers None for anything else, and the op's Python
// then takes its general path, which converts, checks and names the problem: the results are the
// same either way, a plain call only skips the Python around the kernel.
#pragma once
#include <Python.h>

#include <cstdint>
#include <optional>
#include <stdexcept>

#include <pybind11/pybind11.h>

#include "nimbleops/view.h"

namespace nimbleops {
namespace plain {

// The largest integer argument a plain call takes (_arrays.INT_LIMIT): counts and sizes above it
// would overflow the kernels' int64 arithmetic, and the general path names them.
constexpr int64_t kIntLimit = int64_t(1) << 62;

// The arguments of one plain call, all of one kind: numpy arrays, or torch tensors (torch.Tensor
// or nn.Parameter itself, no subclass) on the CPU with no lazy sign bit, while autograd records
// none of them and torch neither traces nor transforms the call (torch.compile's own tracing is
// told apart by the Python caller, which Dynamo reads).
class Args {
 public:
  // Reads x into v: a C-contiguous array of dtype `want` of the call's kind (the first array read
  // decides the kind); false where x is anything else.
  bool read(PyObject* x, DType want, View& v) { return read(x, want, false, v, false); }
  // Like read, of dtype float32 or float64 (v.dtype says which).
  bool read_float(PyObject* x, View& v) { return read(x, DType::float32, true, v, false); }
  // Like read_float, a 4-d image batch [N, C, H, W] stored NCHW-contiguous or channels_last
  // (v's strides say which).
  bool read_image(PyObject* x, View& v) { return read(x, DType::float32, true, v, true); }
  // Like read_image, of dtype `want`.
  bool read_image(PyObject* x, DType want, View& v) { return read(x, want, false, v, true); }
  // Like read_float, a table the call updates in place: a writeable numpy array, or a torch
  // tensor that does not require grad (autograd records no in-place update of a plain call).
  bool read_table(PyObject* x, View& v);
  // An optional argument: None leaves out empty; else like read, of `ndim` dimensions.
  bool read_optional(PyObject* x, DType want, int ndim, std::optional<View>& out) {
    return x == Py_None || (read(x, want, out.emplace()) && out->ndim() == ndim);
  }
  // Like read, and of shape `like`'s.
  bool read_like(PyObject* x, DType want, const View& like, View& v);
  // An array the op takes only where `wanted` (values of GAE, actions of SARSA, ...): read like
  // `like` into out where wanted, else x must be None and out stays empty.
  bool read_like_if(bool wanted, PyObject* x, DType want, const View& like, std::optional<View>& out) {
    return wanted ? read_like(x, want, like, out.emplace()) : x == Py_None;
  }
  // A new contiguous array of the call's kind, shape `shape` and dtype `dtype`, its view in v.
  pybind11::object empty(const std::vector<int64_t>& shape, DType dtype, View& v) const {
    return empty_image(shape, dtype, false, v);
  }
  // Like empty; a 4-d [N, C, H, W] shape stored channels_last where asked.
  pybind11::object empty_image(const std::vector<int64_t>& shape, DType dtype, bool channels_last, View& v) const;
  // A new array of the shape, dtype and layout (contiguous, or an image's channels_last) of
  // `like`, an array this call read into like_view, its view in v (for torch a shorter call than
  // empty's).
  pybind11::object empty_like(PyObject* like, const View& like_view, View& v) const;
  // Tells autograd that the torch tensor x changed (torch's in-place ops bump its version), so
  // that a graph which saved it raises at backward; nothing for a numpy array.
  void bump_version(PyObject* x) const;

 private:
  enum class Kind : uint8_t { unknown, numpy, torch, refused };
  bool read(PyObject* x, DType want, bool any_float, View& v, bool image);
  bool read_numpy(PyObject* x, DType want, bool any_float, View& v, bool image);
  bool read_torch(PyObject* x, DType want, bool any_float, View& v, bool image);
  Kind kind_ = Kind::unknown;
  bool grad_enabled_ = false;
};

// Whether `check` (a kernel's argument check) accepts the call; its std::invalid_argument, a
// problem the general path names in its own words, makes false.
template <class Check>
bool accepted(Check&& check) {
  try {
    check();
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

// x as a number in [lo, hi] (a Python float or int, not a bool); false for anything else.
bool read_number(PyObject* x, double lo, double hi, double& out);
// x as a Python int in [lo, hi] (not a bool); false for anything else.
bool read_int(PyObject* x, int64_t lo, int64_t hi, int64_t& out);
// x as an (h, w) pair of Python ints in [lo, kIntLimit]: an int, or a tuple or list of two; false
// otherwise.
bool read_pair(PyObject* x, int64_t lo, int64_t& h, int64_t& w);
// x as a Python int in [lo, hi] (not a bool).
inline bool read_int(PyObject* x, int64_t lo, int64_t hi) {
  int64_t unused;
  return read_int(x, lo, hi, unused);
}

}  // namespace plain
}  // namespace nimbleops
