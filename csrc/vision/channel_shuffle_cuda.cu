// CUDA channel gather: one thread per output element; the source channel comes from
// channel_source (the CPU's formula), so no map is copied to the device. A pure copy.
#include <cuda_runtime.h>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "vision/channel_shuffle_api.h"

namespace nimbleops {
namespace vision {
namespace cuda {
namespace {

template <class T>
struct GatherArgs {
  const T* in[2];
  T* out[2];
  int64_t in_channels[2], out_channels[2];
  int64_t N, HW, groups, total0, total;
  ChannelOp op;
  bool channels_last;
};

template <class T>
__global__ void gather_kernel(GatherArgs<T> a) {
  NIMBLEOPS_GRID_LOOP(e, a.total) {
    const int o = e < a.total0 ? 0 : 1;
    const int64_t local = o == 0 ? e : e - a.total0, Co = a.out_channels[o];
    int64_t n, j, p;  // image, channel, pixel
    if (a.channels_last) {
      j = local % Co;
      p = (local / Co) % a.HW;
      n = local / (Co * a.HW);
    } else {
      p = local % a.HW;
      j = (local / a.HW) % Co;
      n = local / (a.HW * Co);
    }
    int32_t t;
    int64_t c;
    channel_source(a.op, a.groups, a.in_channels[0], a.in_channels[1], a.out_channels[0], o, j, t, c);
    const int64_t Cs = a.in_channels[t];
    const int64_t src = a.channels_last ? (n * a.HW + p) * Cs + c : (n * Cs + c) * a.HW + p;
    a.out[o][local] = a.in[t][src];
  }
}

}  // namespace

void channel_gather(const ChannelGatherViews& v) {
  const ChannelMap m = channel_map(v);  // checks shapes and formats
  NIMBLEOPS_CHECK(v.inputs[0].device >= 0, "x: expected CUDA tensors for the CUDA kernels");
  CudaDeviceGuard guard(v.inputs[0].device);
  NIMBLEOPS_DISPATCH_FLOATING(v.inputs[0].dtype, "x", [&] {
    using T = scalar_t;
    GatherArgs<T> a{};
    for (size_t t = 0; t < 2; ++t) {
      const bool has = t < v.inputs.size();
      a.in[t] = has ? v.inputs[t].ptr<T>() : nullptr;
      a.out[t] = has ? v.outputs[t].ptr<T>() : nullptr;
      a.in_channels[t] = has ? v.inputs[t].shape[1] : 0;
      a.out_channels[t] = has ? v.outputs[t].shape[1] : 0;
    }
    a.N = m.N;
    a.HW = m.H * m.W;
    a.groups = v.groups;
    a.op = v.op;
    a.channels_last = m.channels_last;
    a.total0 = m.N * a.out_channels[0] * a.HW;
    a.total = a.total0 + m.N * a.out_channels[1] * a.HW;
    if (a.total == 0) return;
    gather_kernel<T><<<grid_blocks(a.total), kGridThreads, 0, reinterpret_cast<cudaStream_t>(v.stream)>>>(a);
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace cuda
}  // namespace vision
}  // namespace nimbleops
