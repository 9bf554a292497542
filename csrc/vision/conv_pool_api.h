// Convolution + ReLU + max pool (inference): the one check and the CPU entry point (semantics in
// nimbleops/vision.h, beside ConvPoolViews).
#pragma once
#include <cstdint>
#include <vector>

#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {

// Checks every argument and returns the output shape [N, Cout, PH, PW].
std::vector<int64_t> check_conv_pool(const ConvPoolViews& v);

namespace cpu {
void conv2d_relu_max_pool(const ConvPoolViews& v, const View& out);
}

}  // namespace vision
}  // namespace nimbleops
