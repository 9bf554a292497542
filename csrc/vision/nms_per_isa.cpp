// Per-ISA suppression sweep of NMS (vision/nms_per_isa.h); see core/isa_unit.h. GCC vector types
// of the level's register width; min / max written as torchvision's std::min / std::max (which
// keep their first argument on a tie or a nan), so the lanes and the scalar tail compute the same
// bits as torchvision's loop.
#include <cstdint>

#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/nms_per_isa.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

// std::max(a, b) and std::min(a, b), lane-wise or scalar
template <class V>
inline V max_of(V a, V b) {
  return a < b ? b : a;
}
template <class V>
inline V min_of(V a, V b) {
  return b < a ? b : a;
}

template <class T, class V, class F>
inline F overlaps(V ix1, V iy1, V ix2, V iy2, V iarea, V x1, V y1, V x2, V y2, V area, V zero, V threshold) {
  const V w = max_of(zero, min_of(ix2, x2) - max_of(ix1, x1));
  const V h = max_of(zero, min_of(iy2, y2) - max_of(iy1, y1));
  const V inter = w * h;
  const V ovr = inter / (iarea + area - inter);
  return ovr > threshold;
}

template <class T>
void suppress(const NmsBoxes<T>& b, int64_t i, int64_t begin, int64_t end, T threshold,
              typename NmsFlag<T>::type* suppressed) {
  typedef typename NmsFlag<T>::type F;
  constexpr int L = register_lanes<T>();
  typedef typename Vec<T, L>::type V;
  typedef typename Mask<T, L>::type M;
  const V ix1 = V{} + b.x1[i], iy1 = V{} + b.y1[i], ix2 = V{} + b.x2[i], iy2 = V{} + b.y2[i];
  const V iarea = V{} + b.area[i], zero = V{}, thr = V{} + threshold;
  int64_t j = begin;
  for (; j + L <= end; j += L) {
    const M over = overlaps<T, V, M>(ix1, iy1, ix2, iy2, iarea, load<V>(b.x1 + j), load<V>(b.y1 + j),
                                     load<V>(b.x2 + j), load<V>(b.y2 + j), load<V>(b.area + j), zero, thr);
    store(suppressed + j, load<M>(suppressed + j) | over);
  }
  for (; j < end; ++j) {
    const bool over = overlaps<T, T, bool>(b.x1[i], b.y1[i], b.x2[i], b.y2[i], b.area[i], b.x1[j], b.y1[j], b.x2[j],
                                           b.y2[j], b.area[j], T(0), threshold);
    if (over) suppressed[j] = F(-1);
  }
}

}  // namespace

extern const NmsKernels<float> nms_f32;
extern const NmsKernels<double> nms_f64;
const NmsKernels<float> nms_f32 = {&suppress<float>};
const NmsKernels<double> nms_f64 = {&suppress<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
