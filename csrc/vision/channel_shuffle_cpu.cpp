// CPU channel gather (channel shuffle, fused concat + shuffle + split, and its backward).
// NCHW: every output plane is one memcpy of an input plane, in parallel over planes.
// channels_last: every pixel's channel vector is gathered, in parallel over pixels.
#include <cstring>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "vision/channel_shuffle_api.h"

namespace nimbleops {
namespace vision {
namespace {

const char* role(const ChannelGatherViews& v, bool output, size_t t) {
  static const char* names[3][2][2] = {{{"x", "x"}, {"out", "out"}},
                                       {{"a", "b"}, {"out1", "out2"}},
                                       {{"grad_out1", "grad_out2"}, {"grad_a", "grad_b"}}};
  return names[int(v.op)][output ? 1 : 0][t];
}

}  // namespace

ChannelMap channel_map(const ChannelGatherViews& v) {
  const size_t want = v.op == ChannelOp::shuffle ? 1 : 2;
  NIMBLEOPS_CHECK(v.inputs.size() == want && v.outputs.size() == want, "internal: expected ", want,
                  " inputs and outputs");
  const View& first = v.inputs[0];
  ChannelMap m;
  NIMBLEOPS_CHECK(first.ndim() == 4, role(v, false, 0), ": expected [N, C, H, W], got shape ", shape_str(first));
  NIMBLEOPS_CHECK(first.dtype == DType::float32 || first.dtype == DType::float64, role(v, false, 0),
                  ": expected float32 or float64, got ", dtype_name(first.dtype));
  m.N = first.shape[0];
  m.H = first.shape[2];
  m.W = first.shape[3];
  m.channels_last = !first.is_contiguous();
  auto check = [&](const View& x, const char* name) {
    NIMBLEOPS_CHECK(x.ndim() == 4 && x.shape[0] == m.N && x.shape[2] == m.H && x.shape[3] == m.W, name,
                    ": expected [", m.N, ", C, ", m.H, ", ", m.W, "], got shape ", shape_str(x));
    check_dtype(x, first.dtype, name);
    check_same_device(x, first, name, role(v, false, 0));
    NIMBLEOPS_CHECK(m.channels_last ? x.is_channels_last() : x.is_contiguous(), name, ": expected a ",
                    m.channels_last ? "channels_last" : "NCHW", "-contiguous tensor like ", role(v, false, 0));
  };
  for (size_t t = 0; t < want; ++t) {
    check(v.inputs[t], role(v, false, t));
    check(v.outputs[t], role(v, true, t));
  }
  auto channels = [](const View& x) { return x.shape[1]; };
  const int64_t C0 = channels(v.inputs[0]), C1 = want == 2 ? channels(v.inputs[1]) : 0;
  int64_t out_channels[2] = {0, 0};
  if (v.op == ChannelOp::shuffle) {
    NIMBLEOPS_CHECK(v.groups >= 1 && C0 % v.groups == 0, "groups: expected a positive divisor of the channel count ",
                    C0, ", got ", v.groups);
    out_channels[0] = C0;
  } else if (v.op == ChannelOp::concat_shuffle_split) {
    NIMBLEOPS_CHECK((C0 + C1) % 2 == 0, "a, b: expected an even total channel count, got ", C0, " + ", C1);
    out_channels[0] = out_channels[1] = (C0 + C1) / 2;
  } else {
    const int64_t Ca = channels(v.outputs[0]), Cb = channels(v.outputs[1]);
    NIMBLEOPS_CHECK(C1 == C0 && Ca + Cb == 2 * C0, "grad_out1, grad_out2: expected ", (Ca + Cb) / 2,
                    " channels each, got ", C0, " and ", C1);
    out_channels[0] = Ca;
    out_channels[1] = Cb;
  }
  m.tensor.resize(want);
  m.channel.resize(want);
  for (size_t o = 0; o < want; ++o) {
    NIMBLEOPS_CHECK(channels(v.outputs[o]) == out_channels[o], role(v, true, o), ": expected ", out_channels[o],
                    " channels, got ", channels(v.outputs[o]));
    for (int64_t j = 0; j < out_channels[o]; ++j) {
      int32_t t;
      int64_t c;
      channel_source(v.op, v.groups, C0, C1, out_channels[0], int64_t(o), j, t, c);
      m.tensor[o].push_back(t);
      m.channel[o].push_back(int32_t(c));
    }
  }
  return m;
}

namespace cpu {

void channel_gather(const ChannelGatherViews& v) {
  const ChannelMap m = channel_map(v);
  for (const View& x : v.inputs) NIMBLEOPS_CHECK(x.device < 0, "inputs: expected CPU arrays");
  NIMBLEOPS_DISPATCH_FLOATING(v.inputs[0].dtype, "x", [&] {
    using T = scalar_t;
    const int64_t HW = m.H * m.W;
    if (!m.channels_last) {
      // (output tensor, n, channel) planes, flattened
      std::vector<int64_t> first_plane(v.outputs.size() + 1, 0);
      for (size_t o = 0; o < v.outputs.size(); ++o)
        first_plane[o + 1] = first_plane[o] + m.N * v.outputs[o].shape[1];
      const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(HW, 1));
      parallel_for(first_plane.back(), grain, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          size_t o = 0;
          while (p >= first_plane[o + 1]) ++o;
          const int64_t Co = v.outputs[o].shape[1], n = (p - first_plane[o]) / Co, j = (p - first_plane[o]) % Co;
          const View& src = v.inputs[size_t(m.tensor[o][size_t(j)])];
          const T* from = src.ptr<T>() + (n * src.shape[1] + m.channel[o][size_t(j)]) * HW;
          std::memcpy(v.outputs[o].ptr<T>() + (n * Co + j) * HW, from, sizeof(T) * size_t(HW));
        }
      });
      return;
    }
    // channels_last: per output channel, the source pointer and channel stride
    std::vector<std::vector<const T*>> from(v.outputs.size());
    std::vector<std::vector<int64_t>> step(v.outputs.size());
    for (size_t o = 0; o < v.outputs.size(); ++o)
      for (size_t j = 0; j < m.channel[o].size(); ++j) {
        const View& src = v.inputs[size_t(m.tensor[o][j])];
        from[o].push_back(src.ptr<T>() + m.channel[o][j]);
        step[o].push_back(src.shape[1]);
      }
    parallel_for(m.N * HW, 256, [&](int64_t p0, int64_t p1) {
      for (size_t o = 0; o < v.outputs.size(); ++o) {
        const int64_t Co = v.outputs[o].shape[1];
        T* out = v.outputs[o].ptr<T>();
        const T* const* f = from[o].data();
        const int64_t* s = step[o].data();
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t j = 0; j < Co; ++j) out[p * Co + j] = f[j][p * s[j]];
      }
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
