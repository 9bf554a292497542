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
DType dtype_from_name(const std::string& s) {
  if (s == "float32") return DType::float32;
  if (s == "float64") return DType::float64;
  if (s == "int32") return DType::int32;
  if (s == "int64") return DType::int64;
  if (s == "bool") return DType::boolean;
  throw std::invalid_argument("View: unsupported dtype '" + s + "'");
}
}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "nimbleops compiled kernels";

  py::class_<View>(m, "View")
      .def(py::init([](uintptr_t ptr, std::vector<int64_t> shape, std::vector<int64_t> strides, const std::string& dtype,
                       int device) {
             NIMBLEOPS_CHECK(shape.size() == strides.size(), "View: shape and strides differ in length");
             for (int64_t s : shape) NIMBLEOPS_CHECK(s >= 0, "View: negative extent in shape");
             View v;
             v.data = reinterpret_cast<void*>(ptr);
             v.shape = std::move(shape);
             v.strides = std::move(strides);
             v.dtype = dtype_from_name(dtype);
             v.device = device;
             return v;
           }),
           py::arg("ptr"), py::arg("shape"), py::arg("strides"), py::arg("dtype"), py::arg("device"))
      // the torch tensors' fast path (nimbleops/_arrays.py view): shape and strides as tuples,
      // the dtype as its code (dtype_codes)
      .def_static(
          "of",
          [](uintptr_t ptr, const py::tuple& shape, const py::tuple& strides, int dtype, int device) {
            const size_t n = shape.size();
            NIMBLEOPS_CHECK(strides.size() == n, "View: shape and strides differ in length");
            NIMBLEOPS_CHECK(dtype >= 0 && dtype <= int(DType::boolean), "View: unsupported dtype code ", dtype);
            View v;
            v.data = reinterpret_cast<void*>(ptr);
            v.dtype = static_cast<DType>(dtype);
            v.device = device;
            v.shape.resize(n);
            v.strides.resize(n);
            for (size_t i = 0; i < n; ++i) {
              v.shape[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(shape.ptr(), i));
              v.strides[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(strides.ptr(), i));
              NIMBLEOPS_CHECK(v.shape[i] >= 0, "View: negative extent in shape");
            }
            if (PyErr_Occurred()) throw py::error_already_set();
            return v;
          },
          py::arg("ptr"), py::arg("shape"), py::arg("strides"), py::arg("dtype"), py::arg("device"))
      .def_static("dtype_codes",
                  [] {
                    py::dict d;
                    for (DType t : {DType::float32, DType::float64, DType::int32, DType::int64, DType::boolean})
                      d[dtype_name(t)] = static_cast<int>(t);
                    return d;
                  })
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

  auto rl = m.def_submodule("rl", "Bellman backups and tabular MDP solvers");
  bind_rl(rl);
  auto vision = m.def_submodule("vision", "Position-sensitive RoI align and pool");
  bind_vision(vision);
}
