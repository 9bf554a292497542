// NMS on the host. The boxes are visited in a stable descending sort of the scores, each group's
// boxes on their own (a box sweeps only its group: sum of n_g^2 IoUs, not n^2), then the kept
// boxes of all groups are merged back into visiting order. The IoU threshold is compared in the
// boxes' dtype: for float32, against the largest float not above it, which decides `ovr >
// threshold` exactly as torchvision's float-vs-double comparison does.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/dispatch.h"
#include "core/simd.h"
#include "vision/nms_api.h"
#include "vision/nms_per_isa.h"

namespace nimbleops {
namespace vision {

NIMBLEOPS_ISA_KERNEL_TABLES(NmsKernels, nms_kernels, nms)

namespace {

// the largest T not above t: `T x > t` (t a double) is `x > below(t)` in T
template <class T>
T threshold_in(double t) {
  T r = static_cast<T>(t);
  if (static_cast<double>(r) > t) r = std::nextafter(r, -std::numeric_limits<T>::infinity());
  return r;
}

template <class T>
int64_t run(const View& boxes_v, const View& scores_v, const int64_t* groups, double iou_threshold,
            int64_t max_output, int64_t* keep) {
  const int64_t K = scores_v.numel();
  const T* box = boxes_v.ptr<T>();
  const T* score = scores_v.ptr<T>();
  // visiting order: stable, descending, nan first (torch's sort)
  std::vector<int64_t> order(K);
  for (int64_t k = 0; k < K; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [score](int64_t a, int64_t b) {
    const T sa = score[a], sb = score[b];
    return sa > sb || (std::isnan(sa) && !std::isnan(sb));
  });
  // each group's boxes, contiguous and in visiting order
  std::vector<int64_t> sorted = order;
  if (groups)
    std::stable_sort(sorted.begin(), sorted.end(), [groups](int64_t a, int64_t b) { return groups[a] < groups[b]; });
  std::vector<int64_t> rank(K);  // visiting position of box k
  for (int64_t r = 0; r < K; ++r) rank[order[r]] = r;
  std::vector<T> x1(K), y1(K), x2(K), y2(K), area(K);
  for (int64_t s = 0; s < K; ++s) {
    const T* b = box + 4 * sorted[s];
    x1[s] = b[0];
    y1[s] = b[1];
    x2[s] = b[2];
    y2[s] = b[3];
    area[s] = (b[2] - b[0]) * (b[3] - b[1]);
  }
  const NmsBoxes<T> soa{x1.data(), y1.data(), x2.data(), y2.data(), area.data()};
  const auto& kernels = nms_kernels<T>();
  const T threshold = threshold_in<T>(iou_threshold);
  std::vector<typename NmsFlag<T>::type> suppressed(K, 0);
  std::vector<int64_t> kept;  // visiting positions
  for (int64_t begin = 0; begin < K;) {
    int64_t end = begin + 1;
    while (groups && end < K && groups[sorted[end]] == groups[sorted[begin]]) ++end;
    if (!groups) end = K;
    int64_t kept_here = 0;
    for (int64_t s = begin; s < end; ++s) {
      if (suppressed[s]) continue;
      kept.push_back(rank[sorted[s]]);
      // without groups the visit is the global order, so it can stop at max_output
      if (!groups && max_output >= 0 && ++kept_here >= max_output) break;
      kernels.suppress(soa, s, s + 1, end, threshold, suppressed.data());
    }
    begin = end;
  }
  std::sort(kept.begin(), kept.end());
  int64_t n = static_cast<int64_t>(kept.size());
  if (max_output >= 0 && n > max_output) n = max_output;
  for (int64_t r = 0; r < n; ++r) keep[r] = order[kept[r]];
  return n;
}

}  // namespace

namespace cpu {

int64_t nms(const View& boxes, const View& scores, const std::optional<View>& groups, double iou_threshold,
            int64_t max_output, const View& keep) {
  NIMBLEOPS_CHECK(scores.ndim() == 1, "scores: expected [K], got shape ", shape_str(scores));
  const int64_t K = scores.shape[0];
  NIMBLEOPS_CHECK(boxes.ndim() == 2 && boxes.shape[0] == K && boxes.shape[1] == 4, "boxes: expected [", K,
                  ", 4] like scores, got shape ", shape_str(boxes));
  NIMBLEOPS_CHECK(boxes.dtype == DType::float32 || boxes.dtype == DType::float64,
                  "boxes: expected float32 or float64, got ", dtype_name(boxes.dtype));
  check_host_array(boxes, boxes.dtype, 4 * K, "boxes");
  check_host_array(scores, boxes.dtype, K, "scores");
  if (groups) check_host_array(*groups, DType::int64, K, "groups");
  check_host_array(keep, DType::int64, K, "keep");
  NIMBLEOPS_CHECK(!std::isnan(iou_threshold), "iou_threshold: expected a number, got nan");
  const int64_t* g = groups ? groups->ptr<int64_t>() : nullptr;
  int64_t* out = keep.ptr<int64_t>();
  if (boxes.dtype == DType::float32) return run<float>(boxes, scores, g, iou_threshold, max_output, out);
  return run<double>(boxes, scores, g, iou_threshold, max_output, out);
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
