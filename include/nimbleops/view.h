// One view type for every kernel: a pointer, shape, strides (in elements), dtype and device.
// Python builds them from numpy arrays or torch tensors without copies (nimbleops/_arrays.py);
// C++ callers fill one in for their own memory (a std::vector, a LibTorch tensor's data_ptr()).
// A view does not own its memory: the caller keeps it alive for the duration of the call.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace nimbleops {

enum class DType : int { float32 = 0, float64 = 1, int32 = 2, int64 = 3, boolean = 4 };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::boolean: return "bool";
  }
  return "?";
}

inline int64_t dtype_size(DType d) {
  switch (d) {
    case DType::float32: case DType::int32: return 4;
    case DType::float64: case DType::int64: return 8;
    case DType::boolean: return 1;
  }
  return 1;
}

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::float64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::int64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::boolean; };

struct View {
  void* data = nullptr;
  DType dtype = DType::float64;
  int device = -1;  // -1: host memory; >= 0: CUDA device ordinal
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements

  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  // densely stored with dim(0) the innermost dimension, dim(1) the next, ... dim(ndim() - 1) the
  // outermost (the strides of dimensions of size 1 are free; an empty view is dense)
  template <class Dim> bool is_dense_in_order(Dim dim) const {
    if (numel() == 0) return true;
    int64_t expected = 1;
    for (int i = 0; i < ndim(); ++i) {
      const int d = dim(i);
      if (shape[d] != 1 && strides[d] != expected) return false;
      expected *= shape[d];
    }
    return true;
  }
  bool is_contiguous() const {
    return is_dense_in_order([n = ndim()](int i) { return n - 1 - i; });
  }
  bool is_cuda() const { return device >= 0; }
  // a 4-d [N, C, H, W] view stored as [N, H, W, C] (PyTorch's channels_last), densely
  bool is_channels_last() const {
    constexpr int order[4] = {1, 3, 2, 0};  // C, W, H, N from the innermost out
    return ndim() == 4 && is_dense_in_order([&order](int i) { return order[i]; });
  }

  // [first, end) bytes the view can touch (its bounds: interleaved views count as overlapping)
  void byte_bounds(uintptr_t& first, uintptr_t& end) const {
    const int64_t item = dtype_size(dtype);
    int64_t lo = 0, hi = 0;
    for (int i = 0; i < ndim(); ++i) {
      if (shape[i] <= 1) continue;
      const int64_t span = (shape[i] - 1) * strides[i] * item;
      (span < 0 ? lo : hi) += span;
    }
    first = reinterpret_cast<uintptr_t>(data) + lo;
    end = reinterpret_cast<uintptr_t>(data) + hi + item;
  }

  template <class T> T* ptr() const {
    if (dtype != dtype_of<T>::value)
      throw std::invalid_argument(std::string("internal: view has dtype ") + dtype_name(dtype) +
                                  ", kernel expected " + dtype_name(dtype_of<T>::value));
    return static_cast<T*>(data);
  }
};

// A view of n-d contiguous (row-major) memory: host memory by default, or on CUDA device `device`.
template <class T>
View contiguous_view(T* data, std::vector<int64_t> shape, int device = -1) {
  View v;
  v.data = const_cast<void*>(static_cast<const void*>(data));
  v.dtype = dtype_of<std::remove_const_t<T>>::value;
  v.device = device;
  v.strides.assign(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) v.strides[i - 1] = v.strides[i] * shape[i];
  v.shape = std::move(shape);
  return v;
}

}  // namespace nimbleops
