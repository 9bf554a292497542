// ShuffleNetV2 stage (inference): the one check and the CPU entry point (semantics in
// nimbleops/vision.h, beside ShuffleUnitViews).
#pragma once
#include <cstdint>
#include <vector>

#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {

// Checks x and every unit (shapes chain from unit to unit; dtypes; host memory) and returns the
// output shape [N, C, H, W].
std::vector<int64_t> check_shufflenet_stage(const View& x, const std::vector<ShuffleUnitViews>& units);

namespace cpu {
void shufflenet_stage(const View& x, const std::vector<ShuffleUnitViews>& units, const View& out);
}

}  // namespace vision
}  // namespace nimbleops
