// CUDA depthwise convolution. Forward: one thread per output element, any strides of x and out
// (NCHW or channels_last). Backward (x and grad_out NCHW-contiguous), deterministic without
// atomics: grad_input one thread per input element gathering its (j, kh, kw) taps; grad_weight
// and grad_bias one block per (output channel, tap), summing N * OH * OW products in a fixed
// order (per-thread strided partial sums, then a fixed shared-memory tree).
#include <cuda_runtime.h>

#include "core/cuda_utils.cuh"
#include "core/dispatch.h"
#include "vision/depthwise_api.h"

namespace nimbleops {
namespace vision {
namespace cuda {
namespace {

template <class T>
struct DwArgs {
  const T* x;
  const T* w;
  const T* bias;
  int64_t N, C, H, W, m, Cout, OH, OW, KH, KW, sh, sw, pad_h, pad_w, dh, dw;
  int64_t xs[4], os[4];  // element strides of x and out (n, c, h, w)
};

template <class T>
__global__ void forward_kernel(DwArgs<T> a, T* out) {
  const int64_t total = a.N * a.Cout * a.OH * a.OW;
  NIMBLEOPS_GRID_LOOP(e, total) {
    const int64_t ow = e % a.OW, oh = (e / a.OW) % a.OH, oc = (e / (a.OW * a.OH)) % a.Cout,
                  n = e / (a.OW * a.OH * a.Cout), c = oc / a.m;
    T acc = a.bias ? a.bias[oc] : T(0);
    for (int64_t kh = 0; kh < a.KH; ++kh) {
      const int64_t ih = oh * a.sh - a.pad_h + kh * a.dh;
      if (ih < 0 || ih >= a.H) continue;
      for (int64_t kw = 0; kw < a.KW; ++kw) {
        const int64_t iw = ow * a.sw - a.pad_w + kw * a.dw;
        if (iw < 0 || iw >= a.W) continue;
        acc += a.w[(oc * a.KH + kh) * a.KW + kw] * a.x[n * a.xs[0] + c * a.xs[1] + ih * a.xs[2] + iw * a.xs[3]];
      }
    }
    out[n * a.os[0] + oc * a.os[1] + oh * a.os[2] + ow * a.os[3]] = acc;
  }
}

// grad_x[n, c, ih, iw] = sum over j, kh, kw with ih = oh*sh - pad_h + kh*dh (likewise iw) of
// w[c*m + j, kh, kw] * g[n, c*m + j, oh, ow]
template <class T>
__global__ void input_kernel(DwArgs<T> a, const T* g, T* gx) {
  const int64_t total = a.N * a.C * a.H * a.W;
  NIMBLEOPS_GRID_LOOP(e, total) {
    const int64_t iw = e % a.W, ih = (e / a.W) % a.H, c = (e / (a.W * a.H)) % a.C, n = e / (a.W * a.H * a.C);
    T acc = T(0);
    for (int64_t j = 0; j < a.m; ++j) {
      const int64_t oc = c * a.m + j;
      for (int64_t kh = 0; kh < a.KH; ++kh) {
        const int64_t th = ih + a.pad_h - kh * a.dh;
        if (th < 0 || th % a.sh != 0 || th / a.sh >= a.OH) continue;
        for (int64_t kw = 0; kw < a.KW; ++kw) {
          const int64_t tw = iw + a.pad_w - kw * a.dw;
          if (tw < 0 || tw % a.sw != 0 || tw / a.sw >= a.OW) continue;
          acc += a.w[(oc * a.KH + kh) * a.KW + kw] * g[((n * a.Cout + oc) * a.OH + th / a.sh) * a.OW + tw / a.sw];
        }
      }
    }
    gx[e] = acc;
  }
}

// one block per (oc, tap); tap == KH*KW is the bias
template <class T>
__global__ void weight_kernel(DwArgs<T> a, const T* g, T* gw, T* gb) {
  __shared__ T partial[kGridThreads];
  const int64_t taps = a.KH * a.KW, oc = blockIdx.x / (taps + 1), t = blockIdx.x % (taps + 1);
  const bool is_bias = t == taps;
  if ((is_bias && !gb) || (!is_bias && !gw)) return;
  const int64_t kh = t / a.KW, kw = t % a.KW, c = oc / a.m, count = a.N * a.OH * a.OW;
  T acc = T(0);
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t ow = e % a.OW, oh = (e / a.OW) % a.OH, n = e / (a.OW * a.OH);
    const T gv = g[((n * a.Cout + oc) * a.OH + oh) * a.OW + ow];
    if (is_bias) {
      acc += gv;
      continue;
    }
    const int64_t ih = oh * a.sh - a.pad_h + kh * a.dh, iw = ow * a.sw - a.pad_w + kw * a.dw;
    if (ih >= 0 && ih < a.H && iw >= 0 && iw < a.W) acc += gv * a.x[((n * a.C + c) * a.H + ih) * a.W + iw];
  }
  const T sum = block_sum(acc, partial);
  if (threadIdx.x == 0) {
    if (is_bias)
      gb[oc] = sum;
    else
      gw[oc * taps + t] = sum;
  }
}

template <class T>
DwArgs<T> make_args(const DepthwiseViews& v, const DepthwiseShape& s) {
  DwArgs<T> a;
  a.x = v.x.ptr<T>();
  a.w = v.weight.ptr<T>();
  a.bias = v.bias ? v.bias->ptr<T>() : nullptr;
  a.N = s.N;
  a.C = s.C;
  a.H = s.H;
  a.W = s.W;
  a.m = s.m;
  a.Cout = s.Cout;
  a.OH = s.OH;
  a.OW = s.OW;
  a.KH = v.KH;
  a.KW = v.KW;
  a.sh = v.sh;
  a.sw = v.sw;
  a.pad_h = v.pad_h;
  a.pad_w = v.pad_w;
  a.dh = v.dh;
  a.dw = v.dw;
  for (int i = 0; i < 4; ++i) a.xs[i] = v.x.strides[size_t(i)];
  return a;
}

}  // namespace

void depthwise_forward(const DepthwiseViews& v, const View& out) {
  const DepthwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device >= 0, "x: expected CUDA tensors for the CUDA kernels");
  NIMBLEOPS_CHECK(out.ndim() == 4 && out.numel() == s.N * s.Cout * s.OH * s.OW, "internal: out shape");
  check_same_device(out, v.x, "out", "x");
  CudaDeviceGuard guard(v.x.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    DwArgs<T> a = make_args<T>(v, s);
    for (int i = 0; i < 4; ++i) a.os[i] = out.strides[size_t(i)];
    const int64_t total = out.numel();
    if (total == 0) return;
    forward_kernel<T><<<grid_blocks(total), kGridThreads, 0, reinterpret_cast<cudaStream_t>(v.stream)>>>(a, out.ptr<T>());
    NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
  });
}

void depthwise_backward(const DepthwiseViews& v, const View& grad_out, const std::optional<View>& grad_x,
                        const std::optional<View>& grad_w, const std::optional<View>& grad_b) {
  const DepthwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device >= 0, "x: expected CUDA tensors for the CUDA kernels");
  NIMBLEOPS_CHECK(!s.channels_last, "internal: the backward takes NCHW-contiguous x");
  check_contiguous(grad_out, "grad_output");
  check_numel(grad_out, s.N * s.Cout * s.OH * s.OW, "grad_output");
  if (grad_x) check_numel(*grad_x, s.N * s.C * s.H * s.W, "grad_input");
  if (grad_w) check_numel(*grad_w, s.Cout * v.KH * v.KW, "grad_weight");
  if (grad_b) check_numel(*grad_b, s.Cout, "grad_bias");
  CudaDeviceGuard guard(v.x.device);
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const DwArgs<T> a = make_args<T>(v, s);
    const auto stream = reinterpret_cast<cudaStream_t>(v.stream);
    const T* g = grad_out.ptr<T>();
    if (grad_x && grad_x->numel() > 0) {
      input_kernel<T><<<grid_blocks(grad_x->numel()), kGridThreads, 0, stream>>>(a, g, grad_x->ptr<T>());
      NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
    }
    if ((grad_w || grad_b) && s.Cout > 0) {
      const int64_t blocks = s.Cout * (v.KH * v.KW + 1);
      weight_kernel<T><<<unsigned(blocks), kGridThreads, 0, stream>>>(a, g, grad_w ? grad_w->ptr<T>() : nullptr,
                                                                   grad_b ? grad_b->ptr<T>() : nullptr);
      NIMBLEOPS_CUDA_CHECK(cudaGetLastError());
    }
  });
}

}  // namespace cuda
}  // namespace vision
}  // namespace nimbleops
