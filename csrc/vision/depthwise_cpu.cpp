// CPU depthwise convolution. m = 1, 3x3 / 5x5 at stride 1 or 2 (dilation 1), channels_last, or
// NCHW in float32: register-blocked channels_last kernels (blocks of pixels x 16 channels) - for
// NCHW over tasks (image, block of 16 channels) transposed into padded channels_last pixels and
// back, the backward too (depthwise_cpu_nchw.cpp, with the flat 3x3 planes); for channels_last
// over output rows, read in place. Other NCHW shapes
// (and float64): OpenMP over (image, input channel) planes, each copied once into a zero-padded
// buffer (split into even / odd columns at stride 2) for the per-ISA row kernels of
// depthwise_per_isa.cpp. Other channels_last shapes: OpenMP over output rows, each pixel's C
// channels vectorised. Backward (NCHW) outside the blocked shapes: OpenMP over input channels;
// each task loops over the images in order, so the weight and bias gradients sum in a fixed order
// (lanes ow % 16, then lanes 0..15), and grad_input of a plane is scattered into a padded buffer
// owned by the task. Every backward is deterministic, without atomics, for any thread count.
//
// Non-finite weights: torch and the reference skip the taps that fall in the zero padding, and
// so does the float32 NCHW 3x3 stride-1 padding-1 kernel at AVX-512 (each plane read in place, the
// padding masked out; its backward on planes of 400 pixels or more). Elsewhere the float32 3x3 /
// 5x5 fast paths skip the padding rows but may multiply the zero padding columns (NCHW always;
// channels_last in the pixel blocks that do not match the row's edges under padding K // 2, such
// as a row's narrow last block), and the NCHW loops of the other sizes multiply all of the
// padding: 0 * inf = nan, so an output pixel whose window reaches that padding can be nan where
// torch gives +-inf or a number. The float64 paths match torch. Finite weights give the same
// result either way (the padding's products are zeros).
#include <algorithm>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "vision/depthwise_api.h"
#include "vision/depthwise_cpu_paths.h"
#include "vision/depthwise_per_isa.h"

namespace nimbleops {
namespace vision {

NIMBLEOPS_ISA_KERNEL_TABLES(DepthwiseKernels, depthwise_kernels, depthwise)

void check_depthwise(DepthwiseViews& v) {
  if (v.weight.ndim() == 4) {
    // PyTorch's [C*m, 1, KH, KW] read as [C*m, KH*KW], sparing the caller a reshape
    NIMBLEOPS_CHECK(v.weight.shape[1] == 1 && v.weight.is_contiguous(),
                    "weight: expected a contiguous [C*m, 1, KH, KW] array, got shape ", shape_str(v.weight));
    const int64_t taps = v.weight.shape[2] * v.weight.shape[3];
    v.weight.shape = {v.weight.shape[0], taps};
    v.weight.strides = {taps, 1};
  }
  NIMBLEOPS_CHECK(v.x.ndim() == 4, "x: expected [N, C, H, W], got shape ", shape_str(v.x));
  NIMBLEOPS_CHECK(v.x.dtype == DType::float32 || v.x.dtype == DType::float64, "x: expected float32 or float64, got ",
                  dtype_name(v.x.dtype));
  DepthwiseShape s;
  s.N = v.x.shape[0];
  s.C = v.x.shape[1];
  s.H = v.x.shape[2];
  s.W = v.x.shape[3];
  s.channels_last = !v.x.is_contiguous();
  NIMBLEOPS_CHECK(!s.channels_last || v.x.is_channels_last(), "x: expected an NCHW- or channels_last-contiguous array");
  NIMBLEOPS_CHECK(v.KH >= 1 && v.KW >= 1 && v.sh >= 1 && v.sw >= 1 && v.dh >= 1 && v.dw >= 1 && v.pad_h >= 0 &&
                      v.pad_w >= 0,
                  "internal: kernel, stride, dilation and padding must be checked by the caller");
  NIMBLEOPS_CHECK(v.weight.ndim() == 2 && v.weight.shape[1] == v.KH * v.KW && s.C >= 1 &&
                      v.weight.shape[0] % s.C == 0 && v.weight.shape[0] >= 1,
                  "weight: expected [C*m, KH*KW] with C = ", s.C, ", got shape ", shape_str(v.weight));
  check_contiguous(v.weight, "weight");
  check_dtype(v.weight, v.x.dtype, "weight");
  check_same_device(v.weight, v.x, "weight", "x");
  s.Cout = v.weight.shape[0];
  s.m = s.Cout / s.C;
  if (v.bias) {
    check_contiguous(*v.bias, "bias");
    check_dtype(*v.bias, v.x.dtype, "bias");
    check_numel(*v.bias, s.Cout, "bias");
    check_same_device(*v.bias, v.x, "bias", "x");
  }
  // dilated kernel extent and padded input, in arithmetic that cannot wrap
  const int64_t eh = checked_add(checked_mul(v.dh, v.KH - 1, "dilation"), 1, "dilation");
  const int64_t ew = checked_add(checked_mul(v.dw, v.KW - 1, "dilation"), 1, "dilation");
  const int64_t Hp = checked_add(s.H, checked_mul(2, v.pad_h, "padding"), "padding");
  const int64_t Wp = checked_add(s.W, checked_mul(2, v.pad_w, "padding"), "padding");
  NIMBLEOPS_CHECK(Hp >= eh && Wp >= ew, "weight: the dilated kernel (", eh, " x ", ew,
                  ") is larger than the padded input (", Hp, " x ", Wp, ")");
  s.OH = (Hp - eh) / v.sh + 1;
  s.OW = (Wp - ew) / v.sw + 1;
  // the output and the padded planes the kernels allocate must be addressable too
  checked_mul(checked_mul(checked_mul(s.N, s.Cout, "output"), s.OH, "padding"), s.OW, "padding");
  checked_mul(Hp, Wp, "padding");
  v.shape = s;
  v.checked = true;
}

namespace cpu {
namespace {

constexpr int64_t kSlack = 4 * kLanes;  // zeros after every buffer the fast loops read past

bool split_layout(const DepthwiseViews& v) { return split_stride2(v.KH, v.KW, v.sh, v.sw, v.dh, v.dw); }

// A fast kernel at stride 1 (or the split layout at stride 2): a plane is one virtual row.
bool virtual_rows(const DepthwiseViews& v) {
  return split_layout(v) || (v.KH == v.KW && (v.KH == 3 || v.KH == 5) && v.sh == 1 && v.sw == 1 && v.dw == 1);
}

// A zero-padded copy of one input plane, in the layout the row kernels read (plain, or four
// parity quadrants for the stride-2 fast path).
template <class T>
struct PaddedPlane {
  std::vector<T> buf;
  int64_t Hp = 0, Wp = 0, stride = 0, quad_size = 0;
  bool split = false;
  T* plane = nullptr;
  T* quad[4] = {nullptr, nullptr, nullptr, nullptr};

  void shape(const DepthwiseViews& v, const DepthwiseShape& s) {
    Hp = s.H + 2 * v.pad_h;
    Wp = s.W + 2 * v.pad_w;
    split = split_layout(v);
    stride = split ? (Wp + 1) / 2 : Wp;
    quad_size = ((Hp + 1) / 2) * stride;
    buf.assign(size_t((split ? 4 * quad_size : Hp * Wp) + kSlack), T(0));
    plane = buf.data();
    for (int q = 0; q < 4; ++q) quad[q] = buf.data() + q * quad_size;
  }
  void zero() { std::fill(buf.begin(), buf.end(), T(0)); }
  // padded element (r, q)
  T& at(int64_t r, int64_t q) {
    return split ? quad[(r & 1) * 2 + (q & 1)][(r >> 1) * stride + (q >> 1)] : plane[r * Wp + q];
  }
  // the interior from src (rows of W elements, row pitch `pitch`)
  void fill(const T* src, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w, int64_t pitch) {
    const DepthwiseKernels<T>& k = depthwise_kernels<T>();
    if (!split) return k.copy_rows(src, pitch, plane + pad_h * Wp + pad_w, Wp, H, W);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t r = h + pad_h;
      T* even = quad[(r & 1) * 2 + (pad_w & 1)] + (r >> 1) * stride + (pad_w >> 1);  // columns w = 0, 2, 4, ...
      T* odd = quad[(r & 1) * 2 + ((pad_w + 1) & 1)] + (r >> 1) * stride + ((pad_w + 1) >> 1);  // w = 1, 3, ...
      k.deinterleave(src + h * pitch, W, even, odd);
    }
  }
  // output row oh (row mode), or the whole plane as one virtual row (virtual_rows)
  template <class Row>
  Row row(const DepthwiseViews& v, const DepthwiseShape& s, int64_t oh) {
    Row a;
    a.plane = plane;
    for (int q = 0; q < 4; ++q) a.quad[q] = quad[q];
    a.stride = stride;
    a.r0 = oh * v.sh;
    a.sh = v.sh;
    a.dh = v.dh;
    a.OW = s.OW;
    a.KH = v.KH;
    a.KW = v.KW;
    a.s = v.sw;
    a.d = v.dw;
    if (virtual_rows(v)) {
      a.r0 = 0;
      a.OW = (s.OH - 1) * stride + s.OW;
    }
    return a;
  }
};

// The output rows of one plane in the layout of the row kernels: the virtual row (position
// oh * Wp + ow) or OH rows of OW. `valid` marks the virtual positions that are outputs.
template <class T>
struct RowLayout {
  bool is_virtual = false;
  int64_t pitch = 0, rows = 0, length = 0;  // row r at r * pitch; length of one kernel call
  std::vector<uint8_t> valid;

  RowLayout(const DepthwiseViews& v, const DepthwiseShape& s) {
    is_virtual = virtual_rows(v);
    const int64_t Wp = s.W + 2 * v.pad_w;
    pitch = is_virtual ? (split_layout(v) ? (Wp + 1) / 2 : Wp) : s.OW;
    rows = is_virtual ? 1 : s.OH;
    length = is_virtual ? (s.OH - 1) * Wp + s.OW : s.OW;
    if (is_virtual) {
      valid.assign(size_t(length + kSlack), 0);
      for (int64_t q = 0; q < length; ++q) valid[size_t(q)] = (q % pitch) < s.OW;
    }
  }
  int64_t buffer_size(const DepthwiseShape& s) const { return (is_virtual ? length : s.OH * s.OW) + kSlack; }
  // plane (OH x OW) <-> buffer in this layout (garbage positions of a virtual buffer untouched)
  void to_buffer(const T* plane, const DepthwiseShape& s, T* buf) const {
    depthwise_kernels<T>().copy_rows(plane, s.OW, buf, pitch, s.OH, s.OW);
  }
  void from_buffer(const T* buf, const DepthwiseShape& s, T* plane) const {
    depthwise_kernels<T>().copy_rows(buf, pitch, plane, s.OW, s.OH, s.OW);
  }
};

// channels_last in the shapes of rows_nhwc: every pixel, border ones included, takes the
// register-blocked kernel forward_rows_nhwc, reading the input rows in place (taps in the padding
// read a pixel of zeros), with no copy of the rows into padded, aligned blocks first: the copy is
// a pass over the input that the aligned loads do not pay back (docs/performance.md has the
// comparison).
constexpr int64_t kChannelChunk = 48, kChunkedImageBytes = int64_t(512) << 10;  // see forward_nhwc_rows

template <class T>
void forward_nchw(const DepthwiseViews& v, const DepthwiseShape& s, T* out) {
  const auto& k = depthwise_kernels<T>();
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
  const int64_t KK = v.KH * v.KW, HW = s.H * s.W, OHW = s.OH * s.OW;
  if (flat_nchw(v, s)) return forward_nchw_flat(v, s, out);
  // (the blocked kernels keep 16 channels in each vector, the plane kernels one plane's pixels:
  // the blocked ones win on these planes even with their transposes)
  if (blocked_nchw(v, s)) return forward_nchw_blocked(v, s, out);
  const RowLayout<T> layout(v, s);
  parallel_for(s.N * s.C, 1, [&](int64_t p0, int64_t p1) {
    PaddedPlane<T> pad;
    pad.shape(v, s);
    std::vector<T> tmp(size_t(layout.buffer_size(s)));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      pad.fill(x + p * HW, s.H, s.W, v.pad_h, v.pad_w, s.W);
      if (p + 1 < p1)  // the next plane streams in while this one is computed
        for (int64_t e = 0; e < HW; e += 64 / int64_t(sizeof(T))) __builtin_prefetch(x + (p + 1) * HW + e);
      for (int64_t j = 0; j < s.m; ++j) {
        const int64_t oc = c * s.m + j;
        T* o = out + (n * s.Cout + oc) * OHW;
        T* dst = layout.is_virtual ? tmp.data() : o;
        for (int64_t r = 0; r < layout.rows; ++r)
          k.forward_row(pad.template row<DwRow<T>>(v, s, r), w + oc * KK, bias ? bias[oc] : T(0), dst + r * layout.pitch);
        if (layout.is_virtual) layout.from_buffer(tmp.data(), s, o);
      }
    }
  });
}

// Reads one element of every 64-byte line of p[0, n): the lines come in from memory in address
// order, at the rate of a sequential stream (volatile loads: neither dropped nor merged).
template <class T>
void touch(const T* p, int64_t n) {
  constexpr int64_t line = 64 / int64_t(sizeof(T));
  for (int64_t i = 0; i < n; i += line) (void)*static_cast<const volatile T*>(p + i);
  if (n > 0) (void)*static_cast<const volatile T*>(p + n - 1);
}

// Before an output row, its input rows that the task's previous output row did not read (all K
// for a task's first row, else the last S) are read once in address order (touch). The kernel
// itself walks a row in blocks of pixels, each block channel block by channel block: 64-byte
// loads C elements apart, an order that the hardware prefetchers do not follow, so that from
// DRAM or L3 the kernel waited on each line. The touch reads those lines in the order the
// prefetchers follow, so the kernel then finds them in cache; it also pays on rows too large for
// L2, and beats software prefetches of the same lines (docs/performance.md).
template <class T>
void forward_nhwc_rows(const DepthwiseViews& v, const DepthwiseShape& s, const T* wt, T* out) {
  const auto& k = depthwise_kernels<T>();
  const T* x = v.x.ptr<T>();
  const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
  const int64_t K = v.KH, S = v.sh, C = s.C, row = s.W * C;
  const std::vector<T> zero(static_cast<size_t>(C), T(0));  // the pixel the taps in the padding read
  // rows[kh]: the input row of output row oh of image n at tap row kh, or null in the padding
  auto input_rows = [&](int64_t n, int64_t oh, std::vector<const T*>& rows) {
    for (int64_t kh = 0; kh < K; ++kh) {
      const int64_t ih = oh * S - v.pad_h + kh;
      rows[size_t(kh)] = (ih >= 0 && ih < s.H) ? x + (n * s.H + ih) * row : nullptr;
    }
  };
  if (S == 1 && C > kChannelChunk && s.H * s.W * C * int64_t(sizeof(T)) <= kChunkedImageBytes) {
    // Small images at stride 1: tasks of a chunk of about kChannelChunk channels (multiples of 16,
    // balanced) over a band of an image's rows, instead of all channels of a row: the chunk's K
    // input rows (K x W pixels x 48 channels) stay in L1 from one output row to the next, where a
    // whole row's K input rows (105 KB at [8,528,10,10]) did not. Same sums. Only images of
    // 512 KB or less: an L2 must hold the image while its chunks pass over it, and larger ones
    // keep the rows (docs/performance.md).
    const int64_t chunks = (C + kChannelChunk - 1) / kChannelChunk;
    const int64_t width = ((C + chunks - 1) / chunks + kLanes - 1) / kLanes * kLanes;
    const int64_t bands = row_bands(s.N * chunks, s.OH);
    parallel_for(s.N * chunks * bands, 1, [&](int64_t t0, int64_t t1) {
      std::vector<const T*> rows(static_cast<size_t>(K));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / (chunks * bands), c0 = (t / bands) % chunks * width, band = t % bands;
        if (c0 >= C) continue;
        for (int64_t oh = band * s.OH / bands; oh < (band + 1) * s.OH / bands; ++oh) {
          input_rows(n, oh, rows);
          k.forward_rows_nhwc(rows.data(), zero.data(), K, S, v.pad_w, s.W, s.OW, wt, bias, C, c0,
                              std::min(C, c0 + width), out + (n * s.OH + oh) * s.OW * C);
        }
      }
    });
    return;
  }
  parallel_for(s.N * s.OH, 1, [&](int64_t r0, int64_t r1) {
    std::vector<const T*> rows(static_cast<size_t>(K));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / s.OH, oh = r % s.OH;
      input_rows(n, oh, rows);
      const int64_t fresh = (r == r0 || oh == 0) ? K : std::min(K, S);
      for (int64_t kh = K - fresh; kh < K; ++kh)
        if (rows[size_t(kh)]) touch(rows[size_t(kh)], row);
      k.forward_rows_nhwc(rows.data(), zero.data(), K, S, v.pad_w, s.W, s.OW, wt, bias, C, 0, C, out + r * s.OW * C);
    }
  });
}

template <class T>
void forward_nhwc(const DepthwiseViews& v, const DepthwiseShape& s, T* out) {
  const auto& k = depthwise_kernels<T>();
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
  const int64_t KK = v.KH * v.KW;
  // weights as [KK, Cout], so a tap's weights over the channels are contiguous (64-byte aligned)
  AlignedBuffer<T> wbuf;
  T* wt = wbuf.get(KK * s.Cout);
  for (int64_t oc = 0; oc < s.Cout; ++oc)
    for (int64_t t = 0; t < KK; ++t) wt[t * s.Cout + oc] = w[oc * KK + t];
  if (rows_nhwc(v, s)) return forward_nhwc_rows(v, s, wt, out);

  // one output row per task. Depth multiplier 1: the interior pixels (every tap column inside the
  // input) four at a time, block of 16 channels by block (the block's input rows stay in L1);
  // the border pixels one at a time with their list of taps inside the input
  constexpr int64_t kChannelBlock = kLanes;
  const int64_t lo = std::min(s.OW, (v.pad_w + v.sw - 1) / v.sw);  // first interior column
  const int64_t last = s.W - 1 + v.pad_w - (v.KW - 1) * v.dw;      // interior: ow * sw <= last
  const int64_t hi = last < 0 ? lo : std::max(lo, std::min(s.OW, last / v.sw + 1));  // one past
  parallel_for(s.N * s.OH, 1, [&](int64_t r0, int64_t r1) {
    std::vector<const T*> rows(static_cast<size_t>(v.KH)), src(static_cast<size_t>(KK));
    std::vector<int64_t> taps(static_cast<size_t>(KK));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / s.OH, oh = r % s.OH;
      for (int64_t kh = 0; kh < v.KH; ++kh) {
        const int64_t ih = oh * v.sh - v.pad_h + kh * v.dh;
        rows[size_t(kh)] = (ih >= 0 && ih < s.H) ? x + (n * s.H + ih) * s.W * s.C : nullptr;
      }
      T* orow = out + (n * s.OH + oh) * s.OW * s.Cout;
      if (s.m == 1 && hi > lo)
        for (int64_t c0 = 0; c0 < s.C; c0 += kChannelBlock)
          k.forward_row_nhwc(rows.data(), v.KH, v.KW, lo * v.sw - v.pad_w, hi - lo, v.sw, v.dw, wt, bias, s.C, c0,
                             std::min(s.C, c0 + kChannelBlock), orow + lo * s.C);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        if (s.m == 1 && ow >= lo && ow < hi) continue;
        int64_t count = 0;
        for (int64_t kh = 0; kh < v.KH; ++kh) {
          if (!rows[size_t(kh)]) continue;
          for (int64_t kw = 0; kw < v.KW; ++kw) {
            const int64_t iw = ow * v.sw - v.pad_w + kw * v.dw;
            if (iw < 0 || iw >= s.W) continue;
            src[size_t(count)] = rows[size_t(kh)] + iw * s.C;
            taps[size_t(count++)] = kh * v.KW + kw;
          }
        }
        T* o = orow + ow * s.Cout;
        if (s.m == 1) {
          k.forward_pixel_nhwc(src.data(), taps.data(), count, wt, bias, s.C, 0, s.C, o);
          continue;
        }
        for (int64_t oc = 0; oc < s.Cout; ++oc) {  // depth multiplier > 1: input channel oc / m
          T acc = bias ? bias[oc] : T(0);
          for (int64_t t = 0; t < count; ++t) acc += wt[taps[size_t(t)] * s.Cout + oc] * src[size_t(t)][oc / s.m];
          o[oc] = acc;
        }
      }
    }
  });
}

}  // namespace

void depthwise_forward(const DepthwiseViews& v, const View& out) {
  const DepthwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array for the CPU kernels");
  NIMBLEOPS_CHECK(out.ndim() == 4 && out.shape[0] == s.N && out.shape[1] == s.Cout && out.shape[2] == s.OH &&
                      out.shape[3] == s.OW,
                  "internal: out must be [N, C*m, OH, OW]");
  NIMBLEOPS_CHECK(s.channels_last ? out.is_channels_last() : out.is_contiguous(), "internal: out's memory format");
  check_dtype(out, v.x.dtype, "out");
  if (out.numel() == 0) return;  // an empty batch: nothing to compute (the kernels assume work)
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    if (s.channels_last)
      forward_nhwc<scalar_t>(v, s, out.ptr<scalar_t>());
    else
      forward_nchw<scalar_t>(v, s, out.ptr<scalar_t>());
  });
}

void depthwise_backward(const DepthwiseViews& v, const View& grad_out, const std::optional<View>& grad_x,
                        const std::optional<View>& grad_w, const std::optional<View>& grad_b) {
  const DepthwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array for the CPU kernels");
  NIMBLEOPS_CHECK(!s.channels_last, "internal: the CPU backward takes NCHW-contiguous x");
  check_contiguous(grad_out, "grad_output");
  check_dtype(grad_out, v.x.dtype, "grad_output");
  check_numel(grad_out, s.N * s.Cout * s.OH * s.OW, "grad_output");
  if (grad_x) {
    check_contiguous(*grad_x, "grad_input");
    check_dtype(*grad_x, v.x.dtype, "grad_input");
    check_numel(*grad_x, s.N * s.C * s.H * s.W, "grad_input");
  }
  if (grad_w) {
    check_contiguous(*grad_w, "grad_weight");
    check_dtype(*grad_w, v.x.dtype, "grad_weight");
    check_numel(*grad_w, s.Cout * v.KH * v.KW, "grad_weight");
  }
  if (grad_b) {
    check_contiguous(*grad_b, "grad_bias");
    check_dtype(*grad_b, v.x.dtype, "grad_bias");
    check_numel(*grad_b, s.Cout, "grad_bias");
  }
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const auto& k = depthwise_kernels<T>();
    const T* x = v.x.ptr<T>();
    const T* w = v.weight.ptr<T>();
    const T* g = grad_out.ptr<T>();
    T* gx = grad_x ? grad_x->ptr<T>() : nullptr;
    T* gw = grad_w ? grad_w->ptr<T>() : nullptr;
    T* gb = grad_b ? grad_b->ptr<T>() : nullptr;
    if (s.N * s.OH * s.OW == 0) {  // an empty batch: zero gradients, and nothing else to compute
      if (gx) std::fill(gx, gx + s.N * s.C * s.H * s.W, T(0));
      if (gw) std::fill(gw, gw + s.Cout * v.KH * v.KW, T(0));
      if (gb) std::fill(gb, gb + s.Cout, T(0));
      return;
    }
    // the flat backward on planes of 400 pixels or more: on smaller ones most vectors are border
    // vectors, whose taps take their masks from memory one by one. (The forward, with fewer
    // masked taps per vector, takes the flat kernel at every size.)
    if (flat_nchw(v, s) && s.H * s.W >= 400) return backward_nchw_flat(v, s, g, gx, gw, gb);
    if (blocked_nchw(v, s)) return backward_nchw_blocked(v, s, g, gx, gw, gb);
    const bool weights = gw || gb;
    const int64_t KK = v.KH * v.KW, HW = s.H * s.W, OHW = s.OH * s.OW;
    const RowLayout<T> layout(v, s);
    // grad_input by gathering where it can (stride 1, m = 1, a fast kernel, padding <= K - 1): the
    // correlation of grad_out, padded by K - 1 - p, with the flipped kernel, run by the forward's
    // row kernels (each element sums its taps in registers instead of K*K scatter passes)
    const bool gather = gx && s.m == 1 && v.sh == 1 && v.sw == 1 && v.dh == 1 && v.dw == 1 && v.KH == v.KW &&
                        (v.KH == 3 || v.KH == 5) && v.pad_h <= v.KH - 1 && v.pad_w <= v.KW - 1;
    DepthwiseViews vt = v;
    DepthwiseShape st = s;
    std::vector<T> flipped;
    if (gather) {
      vt.pad_h = v.KH - 1 - v.pad_h;
      vt.pad_w = v.KW - 1 - v.pad_w;
      st.H = s.OH;
      st.W = s.OW;
      st.OH = s.H;
      st.OW = s.W;
      flipped.resize(size_t(s.C * KK));
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t t = 0; t < KK; ++t) flipped[size_t(c * KK + t)] = w[c * KK + (KK - 1 - t)];
    }
    const RowLayout<T> transposed(vt, st);
    parallel_for(s.C, 1, [&](int64_t c0, int64_t c1) {
      PaddedPlane<T> xpad, gpad;
      xpad.shape(v, s);
      gpad.shape(gather ? vt : v, gather ? st : s);
      std::vector<T> tmp(size_t(gather ? transposed.buffer_size(st) : 0));
      std::vector<T> part(size_t(s.m * (KK + 1) * kLanes));  // per output channel: KK taps + bias, 16 lanes
      std::vector<T> gbuf(size_t(layout.buffer_size(s)), T(0));  // grad_out plane (zeros at virtual garbage)
      for (int64_t c = c0; c < c1; ++c) {
        std::fill(part.begin(), part.end(), T(0));
        for (int64_t n = 0; n < s.N; ++n) {
          if (weights) xpad.fill(x + (n * s.C + c) * HW, s.H, s.W, v.pad_h, v.pad_w, s.W);
          if (gather) {
            gpad.fill(g + (n * s.Cout + c) * OHW, s.OH, s.OW, vt.pad_h, vt.pad_w, s.OW);
            k.forward_row(gpad.template row<DwRow<T>>(vt, st, 0), flipped.data() + c * KK, T(0), tmp.data());
            transposed.from_buffer(tmp.data(), st, gx + (n * s.C + c) * HW);
          } else if (gx) {
            gpad.zero();
          }
          for (int64_t j = 0; j < s.m; ++j) {
            const int64_t oc = c * s.m + j;
            layout.to_buffer(g + (n * s.Cout + oc) * OHW, s, gbuf.data());
            T* p = part.data() + j * (KK + 1) * kLanes;
            for (int64_t r = 0; r < layout.rows; ++r) {
              const T* go = gbuf.data() + r * layout.pitch;
              if (weights) {
                DwRow<T> row = xpad.template row<DwRow<T>>(v, s, r);
                row.valid = layout.is_virtual ? layout.valid.data() : nullptr;
                k.weight_row(row, go, p, p + KK * kLanes);
              }
              if (gx && !gather) k.input_row(gpad.template row<DwRowMut<T>>(v, s, r), w + oc * KK, go);
            }
          }
          if (gx && !gather) {
            T* dst = gx + (n * s.C + c) * HW;
            for (int64_t h = 0; h < s.H; ++h)
              for (int64_t ww = 0; ww < s.W; ++ww) dst[h * s.W + ww] = gpad.at(h + v.pad_h, ww + v.pad_w);
          }
        }
        for (int64_t j = 0; j < s.m && weights; ++j)
          weight_grads_from_lanes(part.data() + j * (KK + 1) * kLanes, KK, c * s.m + j, gw, gb);
      }
    });
  });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
