// Depthwise-convolution inner loops over one output row, compiled once per SIMD level
// (depthwise_per_isa.cpp) and picked at run time. The input plane arrives zero-padded, so the loops
// have no borders. Summation orders are fixed in the source (every output: bias, then the taps in
// (kh, kw) order; every weight-gradient partial: lane ow % 16, rows in call order), not by the
// vector width or the thread count. Unlike the other per-ISA units this one contracts
// multiply-adds to FMA where the level has it (AVX2, AVX-512): the last bits may differ from the
// baseline level's.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace vision {

constexpr int kLanes = 16;  // outputs per vector step; partial sums of the weight gradient per tap

// Stride 2 both ways, dilation 1, 3x3 or 5x5: the padded plane is split into four quadrants by
// row and column parity (quad[2 * (r % 2) + (q % 2)], element (r / 2, q / 2)), so that every tap
// (kh, kw) of output (oh, ow) reads quadrant (kh % 2, kw % 2) at (oh + kh / 2, ow + kw / 2):
// consecutive elements, like stride 1.
inline bool split_stride2(int64_t KH, int64_t KW, int64_t sh, int64_t sw, int64_t dh, int64_t dw) {
  return sh == 2 && sw == 2 && dh == 1 && dw == 1 && KH == KW && (KH == 3 || KH == 5);
}

// One output row oh of one plane over the padded plane (row r at plane + r * stride; split
// layout: quadrant rows of pitch `stride`), the first padded row r0 = oh * sh, the row dilation
// dh; s and d: the column stride and dilation.
//
// "Virtual rows": with a fast kernel at stride 1 (or the split layout at stride 2) a whole output
// plane is one row of length (OH - 1) * pitch + OW, output (oh, ow) at position oh * pitch + ow
// (pitch: the padded width, or the quadrant width); the positions with ow >= OW are computed and
// discarded (forward), carry a zero gradient (input gradient) or are masked out by `valid`
// (weight gradient). Small planes then run in full vectors. The fast loops read up to
// kLanes - 1 elements past the last tap of a row: the caller leaves that much slack after every
// buffer.
template <class T>
struct DwRow {
  const T* plane = nullptr;                          // unsplit layout
  const T* quad[4] = {nullptr, nullptr, nullptr, nullptr};  // split layout
  const uint8_t* valid = nullptr;  // weight gradient of a virtual row: which positions are outputs
  int64_t stride = 0, r0 = 0, sh = 1, dh = 1, OW = 0, KH = 1, KW = 1, s = 1, d = 1;
};

template <class T>
struct DwRowMut {  // the same for the padded grad_input plane (written)
  T* plane = nullptr;
  T* quad[4] = {nullptr, nullptr, nullptr, nullptr};
  int64_t stride = 0, r0 = 0, sh = 1, dh = 1, OW = 0, KH = 1, KW = 1, s = 1, d = 1;
};

// The geometry of the flat-plane kernels (3x3, stride 1, padding 1, an NCHW plane of H x W read
// in place as one vector row of H * W elements): vector v holds the outputs at flat positions
// [16 v, 16 v + 16). The vectors [v_lo, v_hi) are inside: every tap of every lane, and of the next
// vector's lanes, reads inside the plane (16 v >= W + 1 and 16 v + 32 + W + 1 <= H * W: the
// kernels load a vector ahead), and only the taps in the left or right padding column are
// masked: edge[2 * (v % phases)] holds the lanes not in the first column, edge[2 * (v % phases)
// + 1] those not in the last (phases = W / gcd(W, 16)). The other
// vectors take `border` (border[(v < v_lo ? v : v - v_hi + v_lo) * 9 + t]: the lanes whose tap t
// lies inside the input, lanes past H * W none). Shape-only: built once per call
// (depthwise_cpu.cpp).
struct FlatPlane {
  int64_t W = 0, HW = 0, nvec = 0, v_lo = 0, v_hi = 0, phases = 1;
  const uint16_t* border = nullptr;
  const uint16_t* edge = nullptr;
};

template <class T>
struct DepthwiseKernels {
  // out[ow] = bias + sum_{kh, kw} w[kh * KW + kw] * x(r0 + kh * dh, ow * s + kw * d), ow < OW
  void (*forward_row)(const DwRow<T>& a, const T* w, T bias, T* out);
  // part[(kh * KW + kw) * 16 + ow % 16] += g[ow] * x(...); part_bias[ow % 16] += g[ow]
  // (only where valid[ow], when valid is given)
  void (*weight_row)(const DwRow<T>& a, const T* g, T* part, T* part_bias);
  // gx(r0 + kh * dh, ow * s + kw * d) += w[kh * KW + kw] * g[ow], taps in (kh, kw) order
  void (*input_row)(const DwRowMut<T>& a, const T* w, const T* g);
  // dst[r * dst_pitch + c] = src[r * src_pitch + c], r < rows, c < cols (padding and extracting planes)
  void (*copy_rows)(const T* src, int64_t src_pitch, T* dst, int64_t dst_pitch, int64_t rows, int64_t cols);
  // even[i] = src[2 i], odd[i] = src[2 i + 1] for the n elements of src (the split layout's fill)
  void (*deinterleave)(const T* src, int64_t n, T* even, T* odd);
  // channels_last, depth multiplier 1: channels [c0, c1) of the output pixels ow0 + q, q < n, of
  // one row, all of whose taps lie inside the row range (rows[kh] is input row oh*sh - pad_h + kh*dh,
  // or null when outside: skipped); pixel q's tap kw reads column iw0 + q*s + kw*d.
  // out[q * C + c] = bias[c] + sum over the taps of w[(kh * KW + kw) * C + c] * x, taps in (kh, kw)
  // order: the same sums as forward_pixel_nhwc, four pixels at a time
  void (*forward_row_nhwc)(const T* const* rows, int64_t KH, int64_t KW, int64_t iw0, int64_t n, int64_t s,
                           int64_t d, const T* w, const T* bias, int64_t C, int64_t c0, int64_t c1, T* out);
  // channels_last, depth multiplier 1, K x K (3 or 5) at stride S (1 or 2), dilation 1, padding
  // pad_w columns on each side: channels [c0, c1) (of C, the pixel pitch) of the output pixels
  // q < n of one row; rows[kh] is
  // the input row (W pixels) of tap row kh, or null where it lies in the padding; pixel q's tap
  // kw reads column q * S - pad_w + kw; zero is C zeros, read for the taps in the padding.
  // out[q * C + c] = bias[c] + the taps in (kh, kw) order: the tap rows in the padding (null)
  // are skipped; the taps in the left and right padding columns are skipped in the main and wide
  // blocks at a row's edges under padding K / 2, and elsewhere multiply zeros (which adds
  // nothing unless w is inf or nan: then nan, where torch, the reference and the per-pixel
  // kernels skip such taps).
  void (*forward_rows_nhwc)(const T* const* rows, const T* zero, int64_t K, int64_t S, int64_t pad_w, int64_t W,
                            int64_t n, const T* w, const T* bias, int64_t C, int64_t c0, int64_t c1, T* out);
  // channels_last, depth multiplier 1: channels [c0, c1) of one output pixel,
  // out[c] = bias[c] + sum over the taps t < taps of w[tap[t] * C + c] * src[t][c]
  void (*forward_pixel_nhwc)(const T* const* src, const int64_t* tap, int64_t taps, const T* w, const T* bias,
                             int64_t C, int64_t c0, int64_t c1, T* out);
  // a block of 16 (kLanes) channels between NCHW planes and channels_last pixels (row pitch
  // `pitch` pixels): dst[(h * pitch + w) * 16 + l] = src[l * plane + h * W + w] (h < H, w < W) for
  // the lanes l < lanes (zeros for the others); and its inverse, only lanes l < lanes written
  void (*planes_to_pixels)(const T* src, int64_t plane, int64_t lanes, int64_t H, int64_t W, T* dst, int64_t pitch);
  void (*pixels_to_planes)(const T* src, int64_t pitch, int64_t lanes, int64_t H, int64_t W, T* dst, int64_t plane);
  // the weight and bias gradient of a block of 16 channels (K x K, 3 or 5, stride S, 1 or 2): x
  // zero-padded channels_last pixels (row pitch `pitch` pixels), g the OH x OW output-gradient
  // pixels (row pitch gpitch); for the pixels in order, part[(kh * K + kw) * 16 + l] += g(oh, ow)[l] *
  // x(oh * S + kh, ow * S + kw)[l] and part[K * K * 16 + l] += g(oh, ow)[l]
  void (*weight_nhwc)(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH, int64_t OW, int64_t K,
                      int64_t S, T* part);
  // the input gradient of one row of OW output pixels of a block of 16 channels (g: their
  // gradients, w: [K * K][16] weights), scattered into K zero-padded channels_last rows:
  // rows[kh][(ow * S + kw) * 16 + l] += w[(kh * K + kw) * 16 + l] * g[ow * 16 + l], in a fixed order
  // (fixed per SIMD level: the pixel blocks are sized to the level's registers)
  void (*input_row_nhwc)(const T* g, int64_t OW, const T* w, int64_t K, int64_t S, T* const* rows);
  // 3x3, stride 1, padding 1, NCHW planes read in place (FlatPlane); null where the level has no
  // such kernel (only AVX-512 float32 has: masked loads and multiply-adds). Every tap in the
  // padding is skipped (as torch and the reference do); the sums: per tap row kh in (kw) order,
  // the first starting from the bias, then the three rows added in order.
  // forward_plane: out[h, w] = bias + sum over the taps of w[kh * 3 + kw] * x[h + kh - 1, w + kw - 1]
  void (*forward_plane)(const T* x, const FlatPlane& f, const T* w, T bias, T* out);
  // backward_plane of one plane: part (unless null) [t * 16 + l] += the products g * x of tap t
  // over the lanes l (t < 9, in vector order), part[9 * 16 + l] += g; gx (unless null) = the
  // correlation of g with the flipped weights wflip[t] = w[8 - t] (the input gradient)
  void (*backward_plane)(const T* x, const T* g, const FlatPlane& f, const T* wflip, T* gx, T* part);
};

template <class T>
const DepthwiseKernels<T>& depthwise_kernels();

}  // namespace vision
}  // namespace nimbleops
