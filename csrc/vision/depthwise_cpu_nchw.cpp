// The CPU depthwise convolution's NCHW fast paths (see depthwise_cpu_paths.h): NCHW through the
// channels_last register-blocked kernels (a task transposes a block of 16 channels into padded
// channels_last pixels and back), and the flat 3x3 planes read in place where the SIMD level
// has them. Both are deterministic for any thread count: the weight gradient sums per task, then
// over the tasks in order.
#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "vision/depthwise_cpu_paths.h"

namespace nimbleops {
namespace vision {
namespace cpu {

// NCHW through the channels_last kernels, for their shapes (rows_nhwc) in float32: a task takes
// one image's block of 16 channels (kLanes), transposed in registers into zero-padded
// channels_last pixels, runs the register-blocked kernels and transposes the result back.
// Channels past C in the last block are zeros and are not written back. Planes up to 64K padded
// pixels (256 x 256): a task's buffers (4 MB each at most) stay near the caches; larger planes take
// the plane kernels.
bool blocked_nchw(const DepthwiseViews& v, const DepthwiseShape& s) {
  return v.x.dtype == DType::float32 && rows_nhwc(v, s) && (s.H + 2 * v.pad_h) * (s.W + 2 * v.pad_w) <= (int64_t(1) << 16);
}

// every block's weights as [KK][16] (lanes past C zero), flipped (tap KK - 1 - t) for the input
// gradient, then its bias (zeros without one): block cb at cb * (KK + 1) * 16, built once per call
template <class T>
std::vector<T> block_weights(const T* w, const T* bias, int64_t C, int64_t KK, bool flip) {
  const int64_t blocks = (C + kLanes - 1) / kLanes;
  std::vector<T> wb(size_t(blocks * (KK + 1) * kLanes), T(0));
  for (int64_t c = 0; c < C; ++c) {
    T* b = wb.data() + (c / kLanes) * (KK + 1) * kLanes + c % kLanes;
    for (int64_t t = 0; t < KK; ++t) b[t * kLanes] = w[c * KK + (flip ? KK - 1 - t : t)];
    if (bias) b[KK * kLanes] = bias[c];
  }
  return wb;
}

// OH x OW output pixels from the zero-padded pixels xp (row pitch Wp; every tap inside), whose
// output row oh reads the padded rows r0 + oh * S + kh; those outside [top, bottom) are padding,
// passed as null rows (the kernels skip them)
template <class T>
void block_conv(const T* xp, int64_t Wp, int64_t K, int64_t S, int64_t OH, int64_t OW, const T* wb, const T* bias,
                T* op, std::vector<const T*>& rows, int64_t r0, int64_t top, int64_t bottom) {
  static const T zero[kLanes] = {};
  const auto forward_rows = depthwise_kernels<T>().forward_rows_nhwc;  // looked up once, not per row
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t kh = 0; kh < K; ++kh) {
      const int64_t r = r0 + oh * S + kh;
      rows[size_t(kh)] = (r >= top && r < bottom) ? xp + (oh * S + kh) * Wp * kLanes : nullptr;
    }
    forward_rows(rows.data(), zero, K, S, 0, Wp, OW, wb, bias, kLanes, 0, kLanes, op + oh * OW * kLanes);
  }
}

// a task's buffer of Hp x Wp zero-padded pixels of 16 lanes (64-byte aligned) whose interior,
// H x W pixels from (top, left), the task writes afterwards: only the border is zeroed, once
template <class T>
T* padded(AlignedBuffer<T>& buf, int64_t Hp, int64_t Wp, int64_t top, int64_t left, int64_t H, int64_t W) {
  T* p = buf.get(Hp * Wp * kLanes);
  const int64_t row = Wp * kLanes;
  std::fill(p, p + top * row, T(0));
  std::fill(p + (top + H) * row, p + Hp * row, T(0));
  for (int64_t r = top; r < top + H; ++r) {
    std::fill(p + r * row, p + r * row + left * kLanes, T(0));
    std::fill(p + r * row + (left + W) * kLanes, p + (r + 1) * row, T(0));
  }
  return p;
}

// The rows [first, last) of a source `rows` rows tall that output rows [o0, o1) read, K taps at
// stride S with p rows of padding above: a band's input rows, or the grad_out rows of a band of
// grad_input's gather
inline std::pair<int64_t, int64_t> source_rows(int64_t o0, int64_t o1, int64_t S, int64_t p, int64_t K,
                                               int64_t rows) {
  return {std::max<int64_t>(0, o0 * S - p), std::min(rows, (o1 - 1) * S - p + K)};
}

template <class T>
void forward_nchw_blocked(const DepthwiseViews& v, const DepthwiseShape& s, T* out) {
  const auto& k = depthwise_kernels<T>();
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
  const int64_t K = v.KH, KK = K * K, HW = s.H * s.W, OHW = s.OH * s.OW;
  const int64_t Hp = s.H + 2 * v.pad_h, Wp = s.W + 2 * v.pad_w, blocks = (s.C + kLanes - 1) / kLanes;
  const std::vector<T> weights = block_weights(w, bias, s.C, KK, false);
  const int64_t bands = row_bands(s.N * blocks, s.OH);
  parallel_for(s.N * blocks * bands, 1, [&](int64_t t0, int64_t t1) {
    AlignedBuffer<T> xbuf, obuf;
    T* xp = padded(xbuf, Hp, Wp, v.pad_h, v.pad_w, s.H, s.W);
    T* op = obuf.get(OHW * kLanes);
    std::vector<const T*> rows(static_cast<size_t>(K));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / (blocks * bands), cb = (t / bands) % blocks, band = t % bands;
      const int64_t c0 = cb * kLanes, lanes = std::min<int64_t>(kLanes, s.C - c0);
      const int64_t o0 = band * s.OH / bands, o1 = (band + 1) * s.OH / bands;  // the band's output rows
      const auto [i0, i1] = source_rows(o0, o1, v.sh, v.pad_h, K, s.H);
      const T* wb = weights.data() + cb * (KK + 1) * kLanes;
      if (i1 > i0)
        k.planes_to_pixels(x + (n * s.C + c0) * HW + i0 * s.W, HW, lanes, i1 - i0, s.W,
                           xp + ((v.pad_h + i0) * Wp + v.pad_w) * kLanes, Wp);
      block_conv(xp + o0 * v.sh * Wp * kLanes, Wp, K, v.sh, o1 - o0, s.OW, wb, bias ? wb + KK * kLanes : nullptr,
                 op + o0 * s.OW * kLanes, rows, o0 * v.sh, v.pad_h, v.pad_h + s.H);
      k.pixels_to_planes(op + o0 * s.OW * kLanes, s.OW, lanes, o1 - o0, s.OW, out + (n * s.C + c0) * OHW + o0 * s.OW,
                         OHW);
    }
  });
}

// The backward for blocked_nchw, per task (image, block of 16 channels). grad_input: at stride 1
// (padding <= K - 1) the correlation of grad_out, zero-padded by K - 1 - p, with the flipped kernel
// (block_conv); else grad_out scattered into zero-padded rows (input_row_nhwc). The weight and
// bias gradients sum over the task's pixels in registers (weight_nhwc) into a partial per task,
// added over the images in order afterwards: deterministic, whatever the thread count.
template <class T>
void backward_nchw_blocked(const DepthwiseViews& v, const DepthwiseShape& s, const T* g, T* gx, T* gw, T* gb) {
  const auto& k = depthwise_kernels<T>();
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const int64_t K = v.KH, S = v.sh, KK = K * K, HW = s.H * s.W, OHW = s.OH * s.OW;
  const int64_t blocks = (s.C + kLanes - 1) / kLanes, Hp = s.H + 2 * v.pad_h, Wp = s.W + 2 * v.pad_w;  // padded input
  const bool gather = S == 1 && v.pad_h <= K - 1 && v.pad_w <= K - 1;
  const int64_t qh = gather ? K - 1 - v.pad_h : 0, qw = gather ? K - 1 - v.pad_w : 0;  // grad_out's padding
  const int64_t Gh = s.OH + 2 * qh, Gw = s.OW + 2 * qw;
  const bool weights = gw || gb;
  // bands of rows (row_bands) where the tasks are few; not with the scatter, whose bands would
  // add into each other's rows. A band takes rows [b * H / bands, ...) of grad_input and rows
  // [b * OH / bands, ...) of grad_out for the weight gradient.
  const int64_t bands = (gx && !gather) ? 1 : row_bands(s.N * blocks, std::min(s.H, s.OH));
  const int64_t part_size = (KK + 1) * kLanes;
  std::vector<T> part(size_t(weights ? s.N * blocks * bands * part_size : 0), T(0));
  // grad_input's weights: flipped for the gather, as they are for the scatter
  const std::vector<T> wgx = gx ? block_weights(w, static_cast<const T*>(nullptr), s.C, KK, gather) : std::vector<T>();
  parallel_for(s.N * blocks * bands, 1, [&](int64_t t0, int64_t t1) {
    AlignedBuffer<T> xbuf, gbuf, obuf;
    T* xp = weights ? padded(xbuf, Hp, Wp, v.pad_h, v.pad_w, s.H, s.W) : nullptr;
    T* gp = padded(gbuf, Gh, Gw, qh, qw, s.OH, s.OW);
    T* op = gx ? obuf.get((gather ? HW : Hp * Wp) * kLanes) : nullptr;  // grad_input pixels (scatter: padded)
    std::vector<const T*> rows(static_cast<size_t>(K));
    std::vector<T*> out_rows(static_cast<size_t>(K));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / (blocks * bands), cb = (t / bands) % blocks, band = t % bands;
      const int64_t c0 = cb * kLanes, lanes = std::min<int64_t>(kLanes, s.C - c0);
      const int64_t i0 = band * s.H / bands, i1 = (band + 1) * s.H / bands;     // its grad_input rows
      const int64_t o0 = band * s.OH / bands, o1 = (band + 1) * s.OH / bands;  // its weight-gradient rows
      // the grad_out rows these read: o0..o1 for the weights, the gather's source rows, every row
      // for the scatter (one band)
      int64_t g0 = weights ? o0 : s.OH, g1 = weights ? o1 : 0;
      if (gx && gather) {
        const auto [r0, r1] = source_rows(i0, i1, 1, qh, K, s.OH);
        g0 = std::min(g0, r0), g1 = std::max(g1, r1);
      } else if (gx) {
        g0 = 0, g1 = s.OH;
      }
      T* gi = gp + (qh * Gw + qw) * kLanes;  // grad_out pixel (0, 0)
      if (g1 > g0)
        k.planes_to_pixels(g + (n * s.C + c0) * OHW + g0 * s.OW, OHW, lanes, g1 - g0, s.OW, gi + g0 * Gw * kLanes, Gw);
      const T* wb = gx ? wgx.data() + cb * (KK + 1) * kLanes : nullptr;
      if (gx && gather) {
        block_conv(gp + i0 * Gw * kLanes, Gw, K, 1, i1 - i0, s.W, wb, static_cast<const T*>(nullptr),
                   op + i0 * s.W * kLanes, rows, i0, qh, qh + s.OH);
        k.pixels_to_planes(op + i0 * s.W * kLanes, s.W, lanes, i1 - i0, s.W, gx + (n * s.C + c0) * HW + i0 * s.W, HW);
      } else if (gx) {
        std::fill(op, op + Hp * Wp * kLanes, T(0));
        for (int64_t oh = 0; oh < s.OH; ++oh) {
          for (int64_t kh = 0; kh < K; ++kh) out_rows[size_t(kh)] = op + (oh * S + kh) * Wp * kLanes;
          k.input_row_nhwc(gi + oh * Gw * kLanes, s.OW, wb, K, S, out_rows.data());
        }
        k.pixels_to_planes(op + (v.pad_h * Wp + v.pad_w) * kLanes, Wp, lanes, s.H, s.W, gx + (n * s.C + c0) * HW, HW);
      }
      if (weights && o1 > o0) {
        const auto [x0, x1] = source_rows(o0, o1, S, v.pad_h, K, s.H);
        if (x1 > x0)
          k.planes_to_pixels(x + (n * s.C + c0) * HW + x0 * s.W, HW, lanes, x1 - x0, s.W,
                             xp + ((v.pad_h + x0) * Wp + v.pad_w) * kLanes, Wp);
        k.weight_nhwc(xp + o0 * S * Wp * kLanes, Wp, gi + o0 * Gw * kLanes, Gw, o1 - o0, s.OW, K, S,
                      part.data() + t * part_size);
      }
    }
  });
  if (!weights) return;
  // each block's partials summed over the images and bands in order (contiguous rows of
  // part_size), in parallel over the blocks
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> sum(static_cast<size_t>(part_size));
    for (int64_t cb = b0; cb < b1; ++cb) {
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t band = 0; band < bands; ++band) {
          const T* p = part.data() + ((n * blocks + cb) * bands + band) * part_size;
          for (int64_t i = 0; i < part_size; ++i) sum[size_t(i)] += p[i];
        }
      for (int64_t c = cb * kLanes; c < std::min<int64_t>(s.C, (cb + 1) * kLanes); ++c) {
        const int64_t l = c % kLanes;
        if (gw)
          for (int64_t t = 0; t < KK; ++t) gw[c * KK + t] = sum[size_t(t * kLanes + l)];
        if (gb) gb[c] = sum[size_t(KK * kLanes + l)];
      }
    }
  });
}

// 3x3 at stride 1 with padding 1 (dilation 1), m = 1, NCHW float32, where the SIMD level has the
// flat-plane kernels (AVX-512): each plane is read in place as one row of H * W elements
// (FlatPlane), without the blocked path's transposes.
bool flat_nchw(const DepthwiseViews& v, const DepthwiseShape& s) {
  return v.x.dtype == DType::float32 && s.m == 1 && v.KH == 3 && v.KW == 3 && v.sh == 1 && v.sw == 1 &&
         v.dh == 1 && v.dw == 1 && v.pad_h == 1 && v.pad_w == 1 && depthwise_kernels<float>().forward_plane != nullptr;
}

// The FlatPlane of an H x W plane and the masks of its border vectors (built once per call)
struct FlatGeometry {
  FlatPlane f;
  std::vector<uint16_t> border, edge;
  FlatGeometry(int64_t H, int64_t W) {
    f.W = W;
    f.HW = H * W;
    f.nvec = (f.HW + kLanes - 1) / kLanes;
    // inside: 16 v >= first, 16 v + 16 <= end (the next vector's taps inside the plane too)
    const int64_t first = W + 1, end = f.HW - W - 1 - kLanes;
    f.v_lo = std::min(f.nvec, (first + kLanes - 1) / kLanes);
    f.v_hi = std::max(f.v_lo, end >= kLanes ? (end - kLanes) / kLanes + 1 : int64_t(0));
    f.phases = W / std::gcd(W, int64_t(kLanes));
    edge.assign(size_t(2 * f.phases), 0);
    for (int64_t p = 0; p < f.phases; ++p)
      for (int l = 0; l < kLanes; ++l) {
        const int64_t w = (p * kLanes + l) % W;
        if (w != 0) edge[size_t(2 * p)] |= uint16_t(1u << l);
        if (w != W - 1) edge[size_t(2 * p + 1)] |= uint16_t(1u << l);
      }
    border.assign(size_t((f.nvec - f.v_hi + f.v_lo) * 9), 0);
    int64_t b = 0;
    for (int64_t vec = 0; vec < f.nvec; ++vec) {
      if (vec == f.v_lo) vec = f.v_hi;
      if (vec >= f.nvec) break;
      for (int l = 0; l < kLanes && vec * kLanes + l < f.HW; ++l) {
        const int64_t h = (vec * kLanes + l) / W, w = (vec * kLanes + l) % W;
        for (int64_t t = 0; t < 9; ++t) {
          const int64_t ih = h + t / 3 - 1, iw = w + t % 3 - 1;
          if (ih >= 0 && ih < H && iw >= 0 && iw < W) border[size_t(b * 9 + t)] |= uint16_t(1u << l);
        }
      }
      ++b;
    }
    f.border = border.data();
    f.edge = edge.data();
  }
  FlatGeometry(const FlatGeometry&) = delete;  // f points into this object's tables
  FlatGeometry& operator=(const FlatGeometry&) = delete;
};

// The backward for flat_nchw: a task per channel, over the images in order, each plane in one
// pass (backward_plane: grad_input and the weight and bias partials per lane); the partials sum
// over the images in order and then over the 16 lanes in order, whatever the thread count.
template <class T>
void backward_nchw_flat(const DepthwiseViews& v, const DepthwiseShape& s, const T* g, T* gx, T* gw, T* gb) {
  const FlatGeometry geometry(s.H, s.W);
  const auto backward_plane = depthwise_kernels<T>().backward_plane;
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const int64_t HW = s.H * s.W;
  const bool weights = gw || gb;
  parallel_for(s.C, 1, [&](int64_t c0, int64_t c1) {
    T part[10 * kLanes], wflip[9];
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(part, part + 10 * kLanes, T(0));
      for (int t = 0; t < 9; ++t) wflip[t] = w[c * 9 + 8 - t];
      for (int64_t n = 0; n < s.N; ++n) {
        const int64_t p = n * s.C + c;
        backward_plane(x + p * HW, g + p * HW, geometry.f, wflip, gx ? gx + p * HW : nullptr, weights ? part : nullptr);
      }
      if (weights) weight_grads_from_lanes(part, 9, c, gw, gb);
    }
  });
}

// The forward for flat_nchw: a task per plane, read in place.
template <class T>
void forward_nchw_flat(const DepthwiseViews& v, const DepthwiseShape& s, T* out) {
  const FlatGeometry geometry(s.H, s.W);
  const auto forward_plane = depthwise_kernels<T>().forward_plane;
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
  const int64_t HW = s.H * s.W;
  parallel_for(s.N * s.C, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      forward_plane(x + p * HW, geometry.f, w + (p % s.C) * 9, bias ? bias[p % s.C] : T(0), out + p * HW);
  });
}

template void forward_nchw_blocked<float>(const DepthwiseViews&, const DepthwiseShape&, float*);
template void forward_nchw_blocked<double>(const DepthwiseViews&, const DepthwiseShape&, double*);
template void backward_nchw_blocked<float>(const DepthwiseViews&, const DepthwiseShape&, const float*, float*, float*,
                                           float*);
template void backward_nchw_blocked<double>(const DepthwiseViews&, const DepthwiseShape&, const double*, double*,
                                            double*, double*);
template void forward_nchw_flat<float>(const DepthwiseViews&, const DepthwiseShape&, float*);
template void forward_nchw_flat<double>(const DepthwiseViews&, const DepthwiseShape&, double*);
template void backward_nchw_flat<float>(const DepthwiseViews&, const DepthwiseShape&, const float*, float*, float*,
                                        float*);
template void backward_nchw_flat<double>(const DepthwiseViews&, const DepthwiseShape&, const double*, double*, double*,
                                         double*);

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
