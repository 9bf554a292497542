// Non-maximum suppression (semantics in nimbleops/vision.h, beside nms): the host kernel. The
// visit is sequential, so the boxes are sorted once into structure-of-arrays and each kept box
// sweeps the later ones of its group with the per-ISA kernel (nms_per_isa.h).
#pragma once
#include <cstdint>
#include <optional>

#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {
namespace cpu {
int64_t nms(const View& boxes, const View& scores, const std::optional<View>& groups, double iou_threshold,
            int64_t max_output, const View& keep);
}
}  // namespace vision
}  // namespace nimbleops
