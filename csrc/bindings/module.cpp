// nimbleops._C: the View type, runtime facts, and one submodule per op family.
#include "bindings/common.h"
#include "core/check.h"
#include "core/parallel.h"
#include "core/simd.h"
#ifdef NIMBLEOPS_WITH_CUDA
#include "core/cuda_runtime.h"
#endif

namespace py = pybind11;
using namespace nimbleops;

namespace {
// A torch tensor whose negative or conjugate bit is set: its memory holds the values before the
// lazy negation or conjugation, so reading it raw would give the wrong sign. Raised, not resolved,
// here (a resolved copy would not outlive the View); the ops resolve and call again.
struct UnresolvedView : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

DType dtype_from_name(const std::string& s) {
  if (s == "float32") return DType::float32;
  if (s == "float64") return DType::float64;
  if (s == "int32") return DType::int32;
  if (s == "int64") return DType::int64;
  if (s == "bool") return DType::boolean;
  throw std::invalid_argument("View: unsupported dtype '" + s + "'");
}

// A torch dtype object's DType: torch's dtype objects are singletons, so each is named once and
// then found by identity (the GIL is held)
DType torch_dtype(const py::object& dtype) {
  static std::vector<std::pair<PyObject*, DType>> seen;
  for (const auto& [object, d] : seen)
    if (object == dtype.ptr()) return d;
  std::string name = py::str(dtype);
  if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  const DType d = dtype_from_name(name);
  seen.emplace_back(dtype.inc_ref().ptr(), d);  // kept alive for the process
  return d;
}
}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "nimbleops compiled kernels";

  py::register_exception<UnresolvedView>(m, "UnresolvedViewError", PyExc_ValueError);

  // Views are made only from a torch tensor or a numpy array (no constructor from a raw pointer)
  py::class_<View>(m, "View")
      // the torch tensors' view (nimbleops/_arrays.py view), one call
      .def_static(
          "of_tensor",
          [](py::handle t) {
            // a torch tensor's data_ptr(), shape, stride(), dtype and device through the C API
            // with interned names (pybind11's attr() builds each name anew)
            static PyObject* const names[] = {PyUnicode_InternFromString("data_ptr"), PyUnicode_InternFromString("shape"),
                                              PyUnicode_InternFromString("stride"), PyUnicode_InternFromString("dtype"),
                                              PyUnicode_InternFromString("is_cuda"),
                                              PyUnicode_InternFromString("get_device"),
                                              PyUnicode_InternFromString("is_neg"),
                                              PyUnicode_InternFromString("is_conj")};
            auto steal = [](PyObject* o) {
              if (!o) throw py::error_already_set();
              return py::reinterpret_steal<py::object>(o);
            };
            if (steal(PyObject_CallMethodNoArgs(t.ptr(), names[6])).ptr() == Py_True ||
                steal(PyObject_CallMethodNoArgs(t.ptr(), names[7])).ptr() == Py_True)
              throw UnresolvedView(
                  "a torch tensor with its negative or conjugate bit set (a lazy view such as x.conj().imag or "
                  "torch._neg_view(x)); pass x.resolve_neg().resolve_conj()");
            View v;
            const py::object ptr = steal(PyObject_CallMethodNoArgs(t.ptr(), names[0]));
            v.data = PyLong_AsVoidPtr(ptr.ptr());
            const py::object shape = steal(PyObject_GetAttr(t.ptr(), names[1]));
            const py::object strides = steal(PyObject_CallMethodNoArgs(t.ptr(), names[2]));
            NIMBLEOPS_CHECK(PyTuple_Check(shape.ptr()) && PyTuple_Check(strides.ptr()) &&
                                PyTuple_GET_SIZE(shape.ptr()) == PyTuple_GET_SIZE(strides.ptr()),
                            "View: expected a torch tensor");
            const Py_ssize_t n = PyTuple_GET_SIZE(shape.ptr());
            v.shape.resize(size_t(n));
            v.strides.resize(size_t(n));
            for (Py_ssize_t i = 0; i < n; ++i) {
              v.shape[size_t(i)] = PyLong_AsLongLong(PyTuple_GET_ITEM(shape.ptr(), i));
              v.strides[size_t(i)] = PyLong_AsLongLong(PyTuple_GET_ITEM(strides.ptr(), i));
            }
            if (PyErr_Occurred()) throw py::error_already_set();
            v.dtype = torch_dtype(steal(PyObject_GetAttr(t.ptr(), names[3])));
            const py::object cuda = steal(PyObject_GetAttr(t.ptr(), names[4]));
            v.device = cuda.ptr() == Py_True ? steal(PyObject_CallMethodNoArgs(t.ptr(), names[5])).cast<int>() : -1;
            return v;
          },
          py::arg("tensor"))
      .def_static(
          "from_numpy",
          [](const py::array& a) {
            View v;
            v.data = const_cast<void*>(a.data());
            const py::dtype d = a.dtype();
            if (d.is(py::dtype::of<float>())) v.dtype = DType::float32;
            else if (d.is(py::dtype::of<double>())) v.dtype = DType::float64;
            else if (d.is(py::dtype::of<int32_t>())) v.dtype = DType::int32;
            else if (d.is(py::dtype::of<int64_t>())) v.dtype = DType::int64;
            else if (d.is(py::dtype::of<bool>())) v.dtype = DType::boolean;
            else throw std::invalid_argument("View: unsupported numpy dtype");
            const int64_t item = static_cast<int64_t>(a.itemsize());
            v.shape.resize(a.ndim());
            v.strides.resize(a.ndim());
            for (py::ssize_t i = 0; i < a.ndim(); ++i) {
              v.shape[i] = a.shape(i);
              NIMBLEOPS_CHECK(a.strides(i) % item == 0, "View: strides must be whole elements");
              v.strides[i] = a.strides(i) / item;
            }
            v.device = -1;
            return v;
          },
          py::arg("array"), "A View of a numpy array (no copy; the array must outlive its use).")
      .def_property_readonly("shape", [](const View& v) { return v.shape; })
      .def_property_readonly("strides", [](const View& v) { return v.strides; })
      .def_property_readonly("dtype", [](const View& v) { return std::string(dtype_name(v.dtype)); })
      .def_property_readonly("device", [](const View& v) { return v.device; })
      .def_property_readonly("is_contiguous", &View::is_contiguous);

  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("max_num_threads", &max_num_threads);
  m.def("serial_after_fork", &serial_after_fork);
  m.def("set_simd_level", &set_isa, py::arg("level"));
  m.def("simd_level", [] { return std::string(isa_name(active_isa())); });

  m.def("build_info", [] {
    py::dict d;
    d["compiler"] = NIMBLEOPS_COMPILER;
    d["openmp"] = NIMBLEOPS_OPENMP_VERSION;
    d["simd_compiled"] = compiled_isas();
    d["simd_detected"] = std::string(isa_name(detected_isa()));
    d["simd_active"] = std::string(isa_name(active_isa()));
#ifdef NIMBLEOPS_WITH_CUDA
    d["cuda"] = true;
    d["cuda_version"] = NIMBLEOPS_CUDA_VERSION;
    d["cuda_architectures"] = NIMBLEOPS_CUDA_ARCHS;
    d["cuda_devices"] = cuda_device_count();
    d["cuda_error"] = cuda_runtime_error();
#else
    d["cuda"] = false;
    d["cuda_version"] = py::none();
    d["cuda_architectures"] = py::none();
    d["cuda_devices"] = 0;
    d["cuda_error"] = "built without CUDA";
#endif
    return d;
  });

  auto rl = m.def_submodule("rl",
                            "RL kernels: Bellman sweeps and solvers, return estimators, TD updates, eligibility traces");
  bind_rl(rl);
  auto vision = m.def_submodule("vision",
                                "Vision kernels: depthwise and pointwise convolutions, channel gathers, ShuffleNetV2 "
                                "stages, convolution + ReLU + max pool, batch norm + ReLU (+ max pool), "
                                "position-sensitive RoI align and pool, non-maximum suppression");
  bind_vision(vision);
}
