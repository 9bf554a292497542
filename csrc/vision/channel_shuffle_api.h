// Channel gathers (shuffle; the ShuffleNetV2 unit's concat + shuffle + split): the source map
// shared by the CPU and CUDA kernels and the per-device entry points (semantics in
// nimbleops/vision.h, beside ChannelGatherViews).
#pragma once
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "nimbleops/vision.h"

namespace nimbleops {
namespace vision {

// The source of output tensor o, channel j: (input tensor, channel). C0, C1: channels of the two
// inputs (shuffle: C0 only; the backward: C0 = C1 = half) and, for the backward, Ca = channels of
// output 0. Shared by the CPU and CUDA kernels.
#if defined(__CUDACC__)
__host__ __device__
#endif
inline void channel_source(ChannelOp op, int64_t groups, int64_t C0, int64_t C1, int64_t Ca, int64_t o, int64_t j,
                           int32_t& tensor, int64_t& channel) {
  if (op == ChannelOp::shuffle) {  // out[k*g + i] = in[i*(C/g) + k]
    tensor = 0;
    channel = (j % groups) * (C0 / groups) + j / groups;
  } else if (op == ChannelOp::concat_shuffle_split) {  // shuffled j <- cat index x; split in halves
    const int64_t half = (C0 + C1) / 2, js = o * half + j, x = (js % 2) * half + js / 2;
    tensor = x < C0 ? 0 : 1;
    channel = x < C0 ? x : x - C0;
  } else {  // the backward: cat index x <- shuffled position 2 * (x % half) + x / half
    const int64_t half = C0, x = o == 0 ? j : Ca + j, js = 2 * (x % half) + x / half;
    tensor = int32_t(js / half);
    channel = js % half;
  }
}

// The source (tensor, channel) of every output channel, after checking shapes and formats.
struct ChannelMap {
  std::vector<std::vector<int32_t>> tensor, channel;  // [output][j]
  int64_t N = 0, H = 0, W = 0;
  bool channels_last = false;
};

ChannelMap channel_map(const ChannelGatherViews& v);

namespace cpu {
void channel_gather(const ChannelGatherViews& v);
}
namespace cuda {
void channel_gather(const ChannelGatherViews& v);
}

}  // namespace vision
}  // namespace nimbleops
