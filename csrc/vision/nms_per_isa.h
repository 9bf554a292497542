// The suppression sweep of non-maximum suppression (nms_api.h), compiled once per SIMD level
// (nms_per_isa.cpp) and picked at run time. The boxes are structure-of-arrays in visiting order;
// the sweep is torchvision's IoU arithmetic lane by lane (no contraction, IEEE division), so every
// level suppresses the same boxes.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

// the suppression flags of boxes of T: an integer of T's size (0 = alive, -1 = suppressed), the
// lane mask of a comparison of T vectors
template <class T>
struct NmsFlag;
template <>
struct NmsFlag<float> {
  typedef int32_t type;
};
template <>
struct NmsFlag<double> {
  typedef int64_t type;
};

// One visited box and the sorted boxes it sweeps.
template <class T>
struct NmsBoxes {
  const T *x1, *y1, *x2, *y2, *area;  // [n], visiting order
};

template <class T>
struct NmsKernels {
  // suppressed[j] = -1 for every j in [begin, end) with IoU(box i, box j) > threshold
  void (*suppress)(const NmsBoxes<T>& boxes, int64_t i, int64_t begin, int64_t end, T threshold,
                   typename NmsFlag<T>::type* suppressed);
};

template <class T>
const NmsKernels<T>& nms_kernels();

}  // namespace vision
}  // namespace nimbleops
