// The plain calls' argument reading (plain_call.h). Everything here runs with the GIL held.
#include "bindings/plain_call.h"

#include <limits>

#include <pybind11/numpy.h>

namespace py = pybind11;

namespace nimbleops {
namespace plain {
namespace {

PyObject* intern(const char* s) { return PyUnicode_InternFromString(s); }

// torch's objects a plain call looks at, found once torch is imported (the ops never import it)
struct Torch {
  PyObject* tensor = nullptr;  // torch.Tensor
  PyObject* parameter = nullptr;  // torch.nn.Parameter
  PyObject* float32 = nullptr;
  PyObject* float64 = nullptr;
  PyObject* boolean = nullptr;
  PyObject* int64 = nullptr;
  PyObject* increment_version = nullptr;  // torch.autograd.graph.increment_version
  PyObject* is_grad_enabled = nullptr;
  PyObject* tracing_state = nullptr;  // torch._C._get_tracing_state
  PyObject* functorch_level = nullptr;  // torch._C._functorch.maybe_current_level
  PyObject* empty = nullptr;  // torch.empty
  PyObject* empty_like = nullptr;  // torch.empty_like
  PyObject* dtype_kw = nullptr;  // ("dtype",), the keyword names of empty's call
  PyObject* dtype_format_kw = nullptr;  // ("dtype", "memory_format")
  PyObject* channels_last = nullptr;  // torch.channels_last
  PyObject* is_cpu = intern("is_cpu");
  PyObject* dtype = intern("dtype");
  PyObject* requires_grad = intern("requires_grad");
  PyObject* is_neg = intern("is_neg");
  PyObject* is_contiguous = intern("is_contiguous");
  PyObject* shape = intern("shape");
  PyObject* stride = intern("stride");
  PyObject* data_ptr = intern("data_ptr");

  PyObject* dtype_object(DType d) const {
    switch (d) {
      case DType::float32: return float32;
      case DType::float64: return float64;
      case DType::boolean: return boolean;
      case DType::int64: return int64;
      default: return nullptr;
    }
  }
};

PyObject* attr_path(PyObject* root, std::initializer_list<const char*> path) {
  py::object o = py::reinterpret_borrow<py::object>(root);
  for (const char* name : path) o = o.attr(name);
  return o.release().ptr();  // kept for the process
}

// torch's objects, or null while torch is not imported
const Torch* torch_objects() {
  static Torch* cached = nullptr;
  if (cached) return cached;
  PyObject* module = PyImport_GetModule(py::str("torch").ptr());  // new reference, or null: not imported
  if (!module) {
    PyErr_Clear();
    return nullptr;
  }
  const py::object torch = py::reinterpret_steal<py::object>(module);
  auto* t = new Torch();  // kept for the process
  t->tensor = attr_path(module, {"Tensor"});
  t->parameter = attr_path(module, {"nn", "Parameter"});
  t->float32 = attr_path(module, {"float32"});
  t->float64 = attr_path(module, {"float64"});
  t->boolean = attr_path(module, {"bool"});
  t->int64 = attr_path(module, {"int64"});
  t->increment_version = attr_path(module, {"autograd", "graph", "increment_version"});
  t->is_grad_enabled = attr_path(module, {"is_grad_enabled"});
  t->tracing_state = attr_path(module, {"_C", "_get_tracing_state"});
  t->functorch_level = attr_path(module, {"_C", "_functorch", "maybe_current_level"});
  t->empty = attr_path(module, {"empty"});
  t->empty_like = attr_path(module, {"empty_like"});
  t->dtype_kw = py::make_tuple("dtype").release().ptr();
  t->dtype_format_kw = py::make_tuple("dtype", "memory_format").release().ptr();
  t->channels_last = attr_path(module, {"channels_last"});
  cached = t;
  return cached;
}

py::object steal(PyObject* o) {
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

bool is_true(PyObject* x, PyObject* name, bool call) {
  const py::object r = steal(call ? PyObject_CallMethodNoArgs(x, name) : PyObject_GetAttr(x, name));
  return r.ptr() == Py_True;
}

// numpy's type number of a dtype, for the dtypes the plain calls read
int numpy_type(DType d) {
  using api = py::detail::npy_api;
  static const int int64 = py::dtype::of<int64_t>().num();  // the platform's int64 (long or long long)
  switch (d) {
    case DType::float32: return api::NPY_FLOAT_;
    case DType::float64: return api::NPY_DOUBLE_;
    case DType::int64: return int64;
    default: return api::NPY_BOOL_;
  }
}

}  // namespace

bool Args::read(PyObject* x, DType want, bool any_float, View& v, bool image) {
  if (kind_ == Kind::refused) return false;
  const auto& np = py::detail::npy_api::get();
  if (kind_ == Kind::unknown) {
    if (Py_TYPE(x) == np.PyArray_Type_) {
      kind_ = Kind::numpy;
    } else {
      // a torch call: refused while autograd could record it (checked per tensor below) or
      // while torch traces (torch.jit.trace) or transforms (vmap, grad) it
      const Torch* t = torch_objects();
      if (!t || (Py_TYPE(x) != reinterpret_cast<PyTypeObject*>(t->tensor) &&
                 Py_TYPE(x) != reinterpret_cast<PyTypeObject*>(t->parameter))) {
        kind_ = Kind::refused;
        return false;
      }
      grad_enabled_ = steal(PyObject_CallNoArgs(t->is_grad_enabled)).ptr() == Py_True;
      if (steal(PyObject_CallNoArgs(t->tracing_state)).ptr() != Py_None ||
          steal(PyObject_CallNoArgs(t->functorch_level)).ptr() != Py_None) {
        kind_ = Kind::refused;
        return false;
      }
      kind_ = Kind::torch;
    }
  }
  return kind_ == Kind::numpy ? read_numpy(x, want, any_float, v, image) : read_torch(x, want, any_float, v, image);
}

bool Args::read_table(PyObject* x, View& v) {
  if (!read_float(x, v)) return false;
  if (kind_ == Kind::numpy) return (py::detail::array_proxy(x)->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) != 0;
  return grad_enabled_ || !is_true(x, torch_objects()->requires_grad, false);  // read checked it with grad on
}

void Args::bump_version(PyObject* x) const {
  if (kind_ == Kind::torch) steal(PyObject_CallOneArg(torch_objects()->increment_version, x));
}

bool Args::read_like(PyObject* x, DType want, const View& like, View& v) {
  return read(x, want, v) && v.shape == like.shape;
}

// v's strides for its shape, C-contiguous
static void contiguous_strides(View& v) {
  v.strides.resize(v.shape.size());
  for (size_t i = v.shape.size(), step = 1; i-- > 0;) {
    v.strides[i] = int64_t(step);
    step *= size_t(v.shape[i]);
  }
}

// v's strides for its [N, C, H, W] shape stored as [N, H, W, C]
static void channels_last_strides(View& v) {
  const int64_t C = v.shape[1], W = v.shape[3];
  v.strides = {v.shape[2] * W * C, 1, W * C, C};
}

bool Args::read_numpy(PyObject* x, DType want, bool any_float, View& v, bool image) {
  const auto& np = py::detail::npy_api::get();
  if (Py_TYPE(x) != np.PyArray_Type_) return false;
  const auto* a = py::detail::array_proxy(x);
  const auto* d = py::detail::array_descriptor_proxy(a->descr);
  constexpr int flags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if (any_float)
    want = d->type_num == numpy_type(DType::float64) ? DType::float64 : DType::float32;
  if (d->type_num != numpy_type(want) || (d->byteorder != '=' && d->byteorder != '|') ||
      !(a->flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) || (image && a->nd != 4))
    return false;
  v.data = a->data;
  v.dtype = want;
  v.device = -1;
  v.shape.assign(a->dimensions, a->dimensions + a->nd);
  if ((a->flags & flags) == flags) {  // C-contiguous: the strides follow from the shape
    contiguous_strides(v);
    return true;
  }
  if (!image) return false;
  const int64_t item = dtype_size(want);
  v.strides.resize(4);
  for (int i = 0; i < 4; ++i) {
    if (a->strides[i] % item != 0) return false;
    v.strides[size_t(i)] = a->strides[i] / item;
  }
  if (!v.is_channels_last()) return false;
  channels_last_strides(v);  // the dense form (the strides of dimensions of size 1 are free)
  return true;
}

bool Args::read_torch(PyObject* x, DType want, bool any_float, View& v, bool image) {
  const Torch* t = torch_objects();
  if (Py_TYPE(x) != reinterpret_cast<PyTypeObject*>(t->tensor) &&
      Py_TYPE(x) != reinterpret_cast<PyTypeObject*>(t->parameter))
    return false;
  const py::object dtype = steal(PyObject_GetAttr(x, t->dtype));
  if (any_float) want = dtype.ptr() == t->float64 ? DType::float64 : DType::float32;
  // (only float tensors require grad; any can carry a negative bit: torch._neg_view)
  const bool real = want == DType::float32 || want == DType::float64;
  if (dtype.ptr() != t->dtype_object(want) || !is_true(x, t->is_cpu, false) ||
      (real && grad_enabled_ && is_true(x, t->requires_grad, false)) || is_true(x, t->is_neg, true))
    return false;
  const bool contiguous = is_true(x, t->is_contiguous, true);
  if (!contiguous && !image) return false;
  const py::object shape = steal(PyObject_GetAttr(x, t->shape));
  if (!PyTuple_Check(shape.ptr())) return false;
  const Py_ssize_t n = PyTuple_GET_SIZE(shape.ptr());
  if (image && n != 4) return false;
  v.shape.resize(size_t(n));
  for (Py_ssize_t i = 0; i < n; ++i) v.shape[size_t(i)] = PyLong_AsLongLong(PyTuple_GET_ITEM(shape.ptr(), i));
  if (PyErr_Occurred()) throw py::error_already_set();
  if (contiguous) {
    contiguous_strides(v);
  } else {  // an image: channels_last, or declined
    const py::object strides = steal(PyObject_CallMethodNoArgs(x, t->stride));
    if (!PyTuple_Check(strides.ptr()) || PyTuple_GET_SIZE(strides.ptr()) != 4) return false;
    v.strides.resize(4);
    for (size_t i = 0; i < 4; ++i) v.strides[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(strides.ptr(), Py_ssize_t(i)));
    if (PyErr_Occurred()) throw py::error_already_set();
    if (!v.is_channels_last()) return false;
    channels_last_strides(v);
  }
  v.data = PyLong_AsVoidPtr(steal(PyObject_CallMethodNoArgs(x, t->data_ptr)).ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  v.dtype = want;
  v.device = -1;
  return true;
}

py::object Args::empty_image(const std::vector<int64_t>& shape, DType dtype, bool channels_last, View& v) const {
  v.dtype = dtype;
  v.device = -1;
  v.shape = shape;
  if (channels_last)
    channels_last_strides(v);
  else
    contiguous_strides(v);
  py::object out;
  if (kind_ == Kind::numpy) {
    const auto& np = py::detail::npy_api::get();
    std::vector<Py_intptr_t> dims(shape.begin(), shape.end()), strides(v.strides.begin(), v.strides.end());
    for (Py_intptr_t& st : strides) st *= dtype_size(dtype);
    out = steal(np.PyArray_NewFromDescr_(np.PyArray_Type_, np.PyArray_DescrFromType_(numpy_type(dtype)),
                                         int(dims.size()), dims.data(), strides.data(), nullptr, 0, nullptr));
    v.data = py::detail::array_proxy(out.ptr())->data;
  } else {
    const Torch* t = torch_objects();
    py::tuple size(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) size[i] = py::int_(shape[i]);
    PyObject* args[] = {size.ptr(), t->dtype_object(dtype), t->channels_last};  // the format only where asked
    out = steal(PyObject_Vectorcall(t->empty, args, 1, channels_last ? t->dtype_format_kw : t->dtype_kw));
    v.data = PyLong_AsVoidPtr(steal(PyObject_CallMethodNoArgs(out.ptr(), t->data_ptr)).ptr());
    if (PyErr_Occurred()) throw py::error_already_set();
  }
  return out;
}

py::object Args::empty_like(PyObject* like, const View& like_view, View& v) const {
  if (kind_ != Kind::torch) return empty_image(like_view.shape, like_view.dtype, !like_view.is_contiguous(), v);
  // like is dense (contiguous, or an image in channels_last), so its empty_like (torch's
  // preserve_format) has its strides
  py::object out = steal(PyObject_CallOneArg(torch_objects()->empty_like, like));
  v = like_view;
  v.data = PyLong_AsVoidPtr(steal(PyObject_CallMethodNoArgs(out.ptr(), torch_objects()->data_ptr)).ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  return out;
}

bool read_number(PyObject* x, double lo, double hi, double& out) {
  if (PyFloat_CheckExact(x)) {
    out = PyFloat_AS_DOUBLE(x);
  } else if (PyLong_CheckExact(x)) {
    out = PyLong_AsDouble(x);
    if (out == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
  } else {
    return false;
  }
  return lo <= out && out <= hi;  // false for nan
}

bool read_int(PyObject* x, int64_t lo, int64_t hi, int64_t& out) {
  if (!PyLong_CheckExact(x)) return false;
  int overflow = 0;
  out = PyLong_AsLongLongAndOverflow(x, &overflow);
  return !overflow && lo <= out && out <= hi;
}

bool read_pair(PyObject* x, int64_t lo, int64_t& h, int64_t& w) {
  constexpr int64_t hi = kIntLimit;
  if (PyLong_CheckExact(x)) return read_int(x, lo, hi, h) && read_int(x, lo, hi, w);
  if ((PyTuple_CheckExact(x) || PyList_CheckExact(x)) && PySequence_Fast_GET_SIZE(x) == 2)
    return read_int(PySequence_Fast_GET_ITEM(x, 0), lo, hi, h) && read_int(PySequence_Fast_GET_ITEM(x, 1), lo, hi, w);
  return false;
}

}  // namespace plain
}  // namespace nimbleops
