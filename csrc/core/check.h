// Argument checks shared by the kernels. They throw std::invalid_argument (ValueError in
// Python) or std::out_of_range (IndexError) with the argument's name, expected and actual.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nimbleops/view.h"

namespace nimbleops {

template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

#define NIMBLEOPS_CHECK(cond, ...) \
  do {                               \
    if (!(cond)) throw std::invalid_argument(::nimbleops::concat(__VA_ARGS__)); \
  } while (0)

#define NIMBLEOPS_CHECK_INDEX(cond, ...) \
  do {                                     \
    if (!(cond)) throw std::out_of_range(::nimbleops::concat(__VA_ARGS__)); \
  } while (0)

// Size arithmetic that cannot wrap: a result outside int64 is an error naming what it sizes
// (a padding of 2**62 must not turn into a small output shape).
inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  NIMBLEOPS_CHECK(!__builtin_add_overflow(a, b, &r), what, ": ", a, " + ", b, " overflows a 64-bit size");
  return r;
}

inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  NIMBLEOPS_CHECK(!__builtin_mul_overflow(a, b, &r), what, ": ", a, " x ", b, " overflows a 64-bit size");
  return r;
}

inline std::string shape_str(const View& v) {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < v.ndim(); ++i) os << (i ? ", " : "") << v.shape[i];
  os << "]";
  return os.str();
}

inline void check_contiguous(const View& v, const char* name) {
  NIMBLEOPS_CHECK(v.is_contiguous(), name, ": expected a contiguous array, got strides that are not row-major");
}

inline void check_dtype(const View& v, DType d, const char* name) {
  NIMBLEOPS_CHECK(v.dtype == d, name, ": expected dtype ", dtype_name(d), ", got ", dtype_name(v.dtype));
}

inline void check_numel(const View& v, int64_t n, const char* name) {
  NIMBLEOPS_CHECK(v.numel() == n, name, ": expected ", n, " elements, got shape ", shape_str(v));
}

// A contiguous host array of n elements of dtype d.
inline void check_host_array(const View& x, DType d, int64_t n, const char* name) {
  check_contiguous(x, name);
  check_dtype(x, d, name);
  check_numel(x, n, name);
  NIMBLEOPS_CHECK(x.device < 0, name, ": expected a CPU array");
}

// A contiguous array of n elements of dtype d on the given device (-1: host).
inline void check_device_array(const View& x, DType d, int64_t n, const char* name, int device) {
  check_contiguous(x, name);
  check_dtype(x, d, name);
  check_numel(x, n, name);
  NIMBLEOPS_CHECK(x.device == device, name, ": expected an array on device ", device, " (-1 = CPU), got ", x.device);
}

inline void check_same_device(const View& a, const View& b, const char* name_a, const char* name_b) {
  NIMBLEOPS_CHECK(a.device == b.device, name_a, " and ", name_b, " must be on the same device, got ",
                  a.device, " and ", b.device, " (-1 = CPU)");
}

// x: a contiguous array of `numel` elements of `dtype` on ref's device, as the arrays a kernel
// reads or writes beside its reference input are.
inline void check_like(const View& x, const View& ref, const char* name, const char* ref_name, int64_t numel,
                       DType dtype) {
  check_contiguous(x, name);
  check_dtype(x, dtype, name);
  check_numel(x, numel, name);
  check_same_device(x, ref, name, ref_name);
}

// x: contiguous, with ref's element count, dtype and device.
inline void check_like(const View& x, const View& ref, const char* name, const char* ref_name) {
  check_like(x, ref, name, ref_name, ref.numel(), ref.dtype);
}

// The shape of views that their op's check has passed (views.checked, views.shape): a kernel's
// guard that it is given checked views.
template <class Views>
const auto& checked_shape(const Views& v) {
  NIMBLEOPS_CHECK(v.checked, "internal: the kernels take views checked by their op's check");
  return v.shape;
}

// the view an optional argument holds, or nullptr (a NamedView's absent view)
inline const View* view_or_null(const std::optional<View>& v) { return v ? &*v : nullptr; }

// Arrays an op updates in place against every other array of the call (absent ones skipped): a
// written array must not share memory with another (numpy's may_share_memory: bounds, so an
// interleaved pair counts as overlapping), or the kernel would read values it has already changed.
struct NamedView {
  const char* name;
  const View* view;  // nullptr: absent
};

inline void check_disjoint(std::initializer_list<NamedView> written, std::initializer_list<NamedView> read) {
  auto overlap = [](const View& a, const View& b) {
    if (a.device != b.device || a.numel() == 0 || b.numel() == 0) return false;
    uintptr_t a0, a1, b0, b1;
    a.byte_bounds(a0, a1);
    b.byte_bounds(b0, b1);
    return a0 < b1 && b0 < a1;
  };
  for (auto w = written.begin(); w != written.end(); ++w) {
    if (!w->view) continue;
    auto test = [&](const NamedView& o) {
      NIMBLEOPS_CHECK(!o.view || !overlap(*w->view, *o.view), w->name, ", ", o.name,
                      ": expected separate memory, got arrays that overlap (", w->name, " is updated in place)");
    };
    for (auto o = w + 1; o != written.end(); ++o) test(*o);
    for (const NamedView& o : read) test(o);
  }
}

}  // namespace nimbleops
