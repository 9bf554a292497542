// Channel shuffle and the ShuffleNetV2 unit's fused concat + shuffle + split, as one kernel: a
// channel gather. Output tensor o, channel j is a copy of input tensor src_tensor, channel
// src_channel; every tensor is [N, C_t, H, W] with the same N, H, W, dtype and memory format
// (NCHW-contiguous or channels_last-contiguous). A pure copy: results are exact.
#pragma once
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/view.h"

namespace nimbleops {
namespace vision {

enum class ChannelOp : int {
  shuffle = 0,                       // 1 input [N, C], 1 output: out[k*g + i] = in[i*(C/g) + k]
  concat_shuffle_split = 1,          // 2 inputs a [N, Ca], b [N, Cb], 2 outputs of (Ca + Cb) / 2
  concat_shuffle_split_backward = 2  // 2 inputs (grads of the outputs), 2 outputs (grads of a, b)
};

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

struct ChannelGatherViews {
  ChannelOp op = ChannelOp::shuffle;
  int64_t groups = 1;  // shuffle
  std::vector<View> inputs, outputs;
  uintptr_t stream = 0;
};

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
