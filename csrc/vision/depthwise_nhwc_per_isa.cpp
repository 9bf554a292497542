// Per-ISA channels_last kernels of the depthwise convolution (vision/depthwise_per_isa.h): blocks of
// pixels x channels held in registers, the NHWC rows, the weight and input gradients; see
// core/isa_unit.h. Their summation orders are fixed in the source, as in depthwise_per_isa.cpp.
#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/depthwise_isa_common.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

// L channels as one value: an L-lane vector, or a scalar for L = 1
template <class T, int L>
struct Block {
  typedef typename Vec<T, L>::type type;
};
template <class T>
struct Block<T, 1> {
  typedef T type;
};

template <int L>
struct Width {  // a channel count as a type (this unit keeps away from std:: templates)
  static constexpr int value = L;
};

// f(Width<L>{}, c) over the channels [c0, c1): blocks of 16 (kLanes), then of 8, then of 4, no
// block wider than Max lanes, then single channels (the channels_last kernels' tails)
template <int Max = kLanes, class F>
inline void over_channels(int64_t c0, int64_t c1, F&& f) {
  int64_t c = c0;
  if constexpr (Max >= 16)
    for (; c + 16 <= c1; c += 16) f(Width<16>{}, c);
  if constexpr (Max >= 8)
    for (; c + 8 <= c1; c += 8) f(Width<8>{}, c);
  for (; c + 4 <= c1; c += 4) f(Width<4>{}, c);
  for (; c < c1; ++c) f(Width<1>{}, c);
}

// channels [c, c + L) of one channels_last output pixel, as one L-lane vector
template <int L, class T>
inline void pixel_block(const T* const* src, const int64_t* tap_index, int64_t taps, const T* w, const T* bias,
                        int64_t C, int64_t c, T* out) {
  typedef typename Block<T, L>::type V;
  V acc = bias ? load<V>(bias + c) : V{};
  for (int64_t t = 0; t < taps; ++t) acc += load<V>(w + tap_index[t] * C + c) * load<V>(src[t] + c);
  store(out + c, acc);
}

// channels [c, c + 4 * kLanes): four vectors at once (independent FMA chains)
template <class T>
inline void pixel_block4(const T* const* src, const int64_t* tap_index, int64_t taps, const T* w, const T* bias,
                         int64_t C, int64_t c, T* out) {
  typedef typename Lanes<T>::V V;
  V acc[4];
  for (int b = 0; b < 4; ++b) acc[b] = bias ? load<V>(bias + c + b * kLanes) : V{};
  for (int64_t t = 0; t < taps; ++t) {
    const T* wt = w + tap_index[t] * C + c;
    const T* x = src[t] + c;
    for (int b = 0; b < 4; ++b) acc[b] += load<V>(wt + b * kLanes) * load<V>(x + b * kLanes);
  }
  for (int b = 0; b < 4; ++b) store(out + c + b * kLanes, acc[b]);
}

// P pixels x L channels (P independent chains), channels [c, c + L)
template <int P, int L, class T>
inline void nhwc_block(const T* const* rows, int64_t KH, int64_t KW, int64_t iw0, int64_t s, int64_t d, const T* w,
                       const T* bias, int64_t C, int64_t c, T* out) {
  typedef typename Block<T, L>::type V;
  V acc[P];
  for (int q = 0; q < P; ++q) acc[q] = bias ? load<V>(bias + c) : V{};
  for (int64_t kh = 0; kh < KH; ++kh) {
    if (!rows[kh]) continue;
    for (int64_t kw = 0; kw < KW; ++kw) {
      const V wv = load<V>(w + (kh * KW + kw) * C + c);
      const T* x = rows[kh] + (iw0 + kw * d) * C + c;
      for (int q = 0; q < P; ++q) acc[q] += wv * load<V>(x + q * s * C);
    }
  }
  for (int q = 0; q < P; ++q) store(out + q * C + c, acc[q]);
}

template <int P, class T>
inline void nhwc_pixels(const T* const* rows, int64_t KH, int64_t KW, int64_t iw0, int64_t s, int64_t d, const T* w,
                        const T* bias, int64_t C, int64_t c0, int64_t c1, T* out) {
  over_channels<reg_lanes<T>()>(c0, c1, [&](auto lanes, int64_t c) {
    nhwc_block<P, decltype(lanes)::value>(rows, KH, KW, iw0, s, d, w, bias, C, c, out);
  });
}

}  // namespace

template <class T>
void forward_row_nhwc(const T* const* rows, int64_t KH, int64_t KW, int64_t iw0, int64_t n, int64_t s, int64_t d,
                      const T* w, const T* bias, int64_t C, int64_t c0, int64_t c1, T* out) {
  int64_t q = 0;
  for (; q + 4 <= n; q += 4) nhwc_pixels<4>(rows, KH, KW, iw0 + q * s, s, d, w, bias, C, c0, c1, out + q * C);
  for (; q < n; ++q) nhwc_pixels<1>(rows, KH, KW, iw0 + q * s, s, d, w, bias, C, c0, c1, out + q * C);
}

namespace {

// the P sums of a pixel block, each starting from the bias of channels [c, c + L) (zero without one)
template <int P, class V, class T>
inline void start_sums(V* a, const T* bias, int64_t c) {
  const V b = bias ? load<V>(bias + c) : V{};
#pragma GCC unroll 10
  for (int q = 0; q < P; ++q) a[q] = b;
}

// channels_last, K x K at stride S straight from the input rows: P output pixels x L channels
// (L = 1: scalars). A tap row's (P - 1) * S + K input pixels are loaded once into registers and
// feed every pixel q with a tap kw at pixel q * S + kw, so a tap row costs K weight loads and
// (P - 1) * S + K input loads for P * K multiply-adds (one load per multiply-add in nhwc_block).
// Pixel q still adds its taps in (kh, kw) order; the P chains are interleaved (kw outer, q inner).
// P pixels x channels [c, c + L): tap row kh's u-th input pixel is at src[kh * U + u] + c (Table)
// or rows[kh] + (u0 + u) * C + c (all inside the row). The accumulators stay in registers over
// the tap rows; the empty asm with a memory clobber keeps the compiler from hoisting the next tap
// row's loads above it (with every row's loads in flight at once it spills the accumulators).
// In place (channels_last, a runtime C) the row's inputs are read through one pointer stepped by
// C, made opaque at each step: with u * C offsets GCC kept U offsets live (out of
// general registers: moved through xmm registers) and folded the loads into the multiply-adds,
// loading each input again for each of its taps (200 loads instead of 95 for a 5x5 stride-2
// block of 8 pixels).
// A tap row in the padding (rows[kh] null) is skipped: its products are zeros, and the other
// taps of a pixel add in the same order (the reference and torch skip the padding too). This
// spares the top and bottom output rows their padding rows' multiply-adds.
// LZ / RZ (in place only): the block's first LZ and last RZ input columns lie in the padding;
// they are not loaded and their products are left out (compile-time constants: the unrolled
// loops drop them); the narrower the image, the more blocks are edges and the more this saves.
template <int K, int S, int L, int P, bool Table, int LZ = 0, int RZ = 0, class T>
__attribute__((noinline)) void rows_block_nhwc(const T* const* src, const T* const* rows, int64_t u0, const T* w,
                                               const T* bias, int64_t C, int64_t c, T* out) {
  typedef typename Block<T, L>::type V;
  constexpr int U = (P - 1) * S + K;
  V a[P];
  start_sums<P>(a, bias, c);
#pragma GCC unroll 5
  for (int kh = 0; kh < K; ++kh) {
    if (!rows[kh]) continue;  // a tap row in the padding adds nothing (see above)
    V x[U];
    if (Table) {
#pragma GCC unroll 24
      for (int u = 0; u < U; ++u) x[u] = load<V>(src[kh * U + u] + c);
    } else {
      const T* row = rows[kh] + (u0 + LZ) * C + c;
#pragma GCC unroll 24
      for (int u = 0; u < U; ++u) {  // one pointer stepped by C (see above)
        if (u < LZ || u >= U - RZ) {
          x[u] = V{};  // a padding column: never read (its products are not computed)
          continue;
        }
        x[u] = load<V>(row);
        row += C;
        opaque(row);
      }
    }
#pragma GCC unroll 5
    for (int kw = 0; kw < K; ++kw) {
      const V wk = load<V>(w + (kh * K + kw) * C + c);
#pragma GCC unroll 10
      for (int q = 0; q < P; ++q)
        if (q * S + kw >= LZ && q * S + kw < U - RZ) a[q] += wk * x[q * S + kw];
    }
    asm volatile("" ::: "memory");
  }
#pragma GCC unroll 10
  for (int q = 0; q < P; ++q) store(out + q * C + c, a[q]);
}

// 16 registers, rows of kLanes channels (the blocked NCHW path's pixels), every tap inside the
// rows: P output pixels x L channels with each input loaded by the multiply-add that uses it
// (a memory operand) instead of a tap row's inputs held in registers, so that the P accumulators
// take the registers: P = 10 independent chains keep both FMA pipes busy, where rows_block_nhwc's
// 16-register blocks (3 to 6 pixels) wait on the FMA latency. After each tap the row pointer
// passes through an empty asm, so the compiler cannot merge the loads of one input across taps
// back into registers, and each load stays a displacement off that one pointer (a memory clobber
// there instead made GCC keep a pointer per input pixel, spilled: ~20% slower standalone). Same
// sums, in the same (kh, kw) order, as rows_block_nhwc.
template <int K, int S, int L, int P, class T>
__attribute__((noinline)) void rows_block_streamed(const T* const* rows, int64_t u0, const T* w, const T* bias,
                                                   int64_t c, T* out) {
  typedef typename Block<T, L>::type V;
  V a[P];
  start_sums<P>(a, bias, c);
#pragma GCC unroll 5
  for (int kh = 0; kh < K; ++kh) {
    if (!rows[kh]) continue;  // a tap row in the padding, as in rows_block_nhwc
    const T* row = rows[kh] + u0 * kLanes + c;
#pragma GCC unroll 5
    for (int kw = 0; kw < K; ++kw) {
      const V wk = load<V>(w + (kh * K + kw) * kLanes + c);
#pragma GCC unroll 10
      for (int q = 0; q < P; ++q) a[q] += wk * load<V>(row + (q * S + kw) * kLanes);
      opaque(row);
    }
  }
#pragma GCC unroll 10
  for (int q = 0; q < P; ++q) store(out + q * kLanes + c, a[q]);
}

template <int K, int S, int P, class T>
inline void rows_pixels_streamed(const T* const* rows, int64_t q0, const T* w, const T* bias, T* out) {
  over_channels<reg_lanes<T>()>(0, kLanes, [&](auto lanes, int64_t c) {
    rows_block_streamed<K, S, decltype(lanes)::value, P>(rows, q0 * S, w, bias, c, out + q0 * kLanes);
  });
}

// n output pixels of rows of kLanes channels, every tap inside: blocks of 10, then 4, 2, 1
template <int K, int S, class T>
void rows_streamed(const T* const* rows, int64_t n, const T* w, const T* bias, T* out) {
  int64_t q = 0;
  for (; q + 10 <= n; q += 10) rows_pixels_streamed<K, S, 10>(rows, q, w, bias, out);
  for (; q + 4 <= n; q += 4) rows_pixels_streamed<K, S, 4>(rows, q, w, bias, out);
  if (q + 2 <= n) {
    rows_pixels_streamed<K, S, 2>(rows, q, w, bias, out);
    q += 2;
  }
  if (q < n) rows_pixels_streamed<K, S, 1>(rows, q, w, bias, out);
}

// Output pixels per register block of rows_block_nhwc at stride S (K x K taps), and the wider
// block taken where it tiles a row better (a 10 or 20 pixel row at stride 1: one block of 10
// instead of 8 + 2); both keep a tap row's (P - 1) * S + K inputs, the P accumulators and a
// weight in the level's registers (32: 8 / 6 pixels, wide 10 / 8; 16: at most 15 registers).
constexpr int nhwc_block_pixels(int K, int S) {
  return kRegisters >= 32 ? (S == 1 ? 8 : 6) : (S == 1 ? (K == 3 ? 6 : 5) : (K == 3 ? 4 : 3));
}
constexpr int nhwc_wide_block_pixels(int K, int S) {
  return kRegisters >= 32 ? (S == 1 ? 10 : 8) : nhwc_block_pixels(K, S);
}

// P pixels from pixel q0, all C channels (rows[kh]: input row of tap row kh, or null in the
// padding; zero: C zeros, read for the taps in the padding). A block reaching into the padding
// lists its input pixels once for all its channels.
template <int K, int S, int P, class T>
inline void rows_pixels_nhwc(const T* const* rows, const T* zero, int64_t q0, int64_t pad_w, int64_t W, const T* w,
                             const T* bias, int64_t C, int64_t c0, int64_t c1, T* out) {
  constexpr int U = (P - 1) * S + K;
  const int64_t u0 = q0 * S - pad_w;
  const bool inside = u0 >= 0 && u0 + U <= W;  // every column (null rows are skipped either way)
  // the edge blocks of a row under padding K / 2, main and wide blocks: LZ leading and RZ
  // trailing columns in the padding, known at compile time, read in place with their products
  // left out (the other blocks reaching into the padding take the table and multiply zeros)
  constexpr bool Edged = P == nhwc_block_pixels(K, S) || P == nhwc_wide_block_pixels(K, S);
  constexpr int LZ = K / 2, RZ = S == 1 ? K / 2 : K - 2 - K / 2;
  const int64_t lz = u0 < 0 ? -u0 : 0, rz = u0 + U > W ? u0 + U - W : 0;
  int edge = 0;  // 1: left, 2: right, 3: both, 0: none (or the table)
  if (Edged && !inside)
    edge = (lz == LZ && rz == 0) ? 1 : (RZ > 0 && lz == 0 && rz == RZ) ? 2 : (RZ > 0 && lz == LZ && rz == RZ) ? 3 : 0;
  const T* src[K * U];
  if (!inside && edge == 0)
    for (int kh = 0; kh < K; ++kh)
      for (int u = 0; u < U; ++u) {
        const int64_t col = u0 + u;
        src[kh * U + u] = (rows[kh] && col >= 0 && col < W) ? rows[kh] + col * C : zero;
      }
  over_channels<reg_lanes<T>()>(c0, c1, [&](auto lanes, int64_t c) {
    constexpr int L = decltype(lanes)::value;
    T* o = out + q0 * C;
    if (inside) return rows_block_nhwc<K, S, L, P, false>(src, rows, u0, w, bias, C, c, o);
    if constexpr (Edged) {
      if (edge == 1) return rows_block_nhwc<K, S, L, P, false, LZ, 0>(src, rows, u0, w, bias, C, c, o);
      if constexpr (RZ > 0) {
        if (edge == 2) return rows_block_nhwc<K, S, L, P, false, 0, RZ>(src, rows, u0, w, bias, C, c, o);
        if (edge == 3) return rows_block_nhwc<K, S, L, P, false, LZ, RZ>(src, rows, u0, w, bias, C, c, o);
      }
    }
    rows_block_nhwc<K, S, L, P, true>(src, rows, u0, w, bias, C, c, o);
  });
}

// blocks of P pixels (all channels of a block before the next: its input pixels stay in L1), then
// the last n % P pixels in blocks of 4, 2 and 1
template <int K, int S, int P, class T>
void rows_nhwc_by(const T* const* rows, const T* zero, int64_t pad_w, int64_t W, int64_t n, const T* w, const T* bias, int64_t C,
                  int64_t c0, int64_t c1, T* out) {
  int64_t q = 0;
  for (; q + P <= n; q += P) rows_pixels_nhwc<K, S, P>(rows, zero, q, pad_w, W, w, bias, C, c0, c1, out);
  if (q + 4 <= n) {
    rows_pixels_nhwc<K, S, 4>(rows, zero, q, pad_w, W, w, bias, C, c0, c1, out);
    q += 4;
  }
  if (q + 2 <= n) {
    rows_pixels_nhwc<K, S, 2>(rows, zero, q, pad_w, W, w, bias, C, c0, c1, out);
    q += 2;
  }
  if (q < n) rows_pixels_nhwc<K, S, 1>(rows, zero, q, pad_w, W, w, bias, C, c0, c1, out);
}

// blocks of the wide width Pw pixels where they tile the row, else of P
template <int K, int S, class T>
void rows_nhwc(const T* const* rows, const T* zero, int64_t pad_w, int64_t W, int64_t n, const T* w, const T* bias, int64_t C,
               int64_t c0, int64_t c1, T* out) {
  constexpr int P = nhwc_block_pixels(K, S), Pw = nhwc_wide_block_pixels(K, S);
  if constexpr (kRegisters < 32) {
    if (c0 == 0 && c1 == kLanes && C == kLanes && pad_w == 0 && (n - 1) * S + K <= W) return rows_streamed<K, S>(rows, n, w, bias, out);
  }
  if (n % Pw == 0 || (n % P != 0 && n % Pw < n % P)) return rows_nhwc_by<K, S, Pw>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  rows_nhwc_by<K, S, P>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
}

}  // namespace

template <class T>
void forward_rows_nhwc(const T* const* rows, const T* zero, int64_t K, int64_t S, int64_t pad_w, int64_t W, int64_t n, const T* w,
                       const T* bias, int64_t C, int64_t c0, int64_t c1, T* out) {
  if (K == 3 && S == 1) return rows_nhwc<3, 1>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  if (K == 3 && S == 2) return rows_nhwc<3, 2>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  if (K == 5 && S == 1) return rows_nhwc<5, 1>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  rows_nhwc<5, 2>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
}

namespace {

// the weight gradient of a block of 16 channels from zero-padded channels_last pixels: for the
// output pixels (oh, ow) in order, part[t * 16 + l] += g * x at tap t = kh * K + kw, and the bias
// part[K * K * 16 + l] += g. Computed in pieces of RL lanes (from lane lb) and GR tap rows (from
// kh0; the bias with the first rows) whose sums stay in registers over the whole plane: each sum
// runs over the pixels in the same order whatever the piece.
template <int K, int S, int RL, int KH0, int GR, class T>
__attribute__((noinline)) void weight_piece_nhwc(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH,
                                                 int64_t OW, int lb, T* part) {
  typedef typename Vec<T, RL>::type V;
  constexpr bool Bias = KH0 == 0;
  constexpr int N = GR * K + (Bias ? 1 : 0);
  V acc[N];
#pragma GCC unroll 26
  for (int t = 0; t < GR * K; ++t) acc[t] = load<V>(part + (KH0 * K + t) * kLanes + lb);
  if (Bias) acc[N - 1] = load<V>(part + K * K * kLanes + lb);
  // Many taps (5 x 5 rows at once): a pointer per tap row, stepped by S pixels, its taps
  // displacements off it; with (kh * pitch + kw) offsets GCC kept one register per tap, out of
  // general registers (spilled in the pixel loop). At 3 x 3 the offsets fit the registers and are
  // used as they are.
  constexpr bool Stepped = GR * K > 16;
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* xr[GR];
#pragma GCC unroll 5
    for (int kh = 0; kh < GR; ++kh) xr[kh] = x + (oh * S + KH0 + kh) * pitch * kLanes + lb;
    const T* gr = g + oh * gpitch * kLanes + lb;
    for (int64_t ow = 0; ow < OW; ++ow) {
      const V gv = load<V>(gr + ow * kLanes);
#pragma GCC unroll 5
      for (int kh = 0; kh < GR; ++kh) {
        const T* xp = Stepped ? xr[kh] : xr[0] + (kh * pitch + ow * S) * kLanes;
#pragma GCC unroll 5
        for (int kw = 0; kw < K; ++kw) {
          acc[kh * K + kw] += gv * load<V>(xp + kw * kLanes);
          // 16 registers: each input straight into its multiply-add (hoisted, the loads spilled
          // the sums)
          if (kRegisters < 32) asm volatile("" ::: "memory");
        }
        if constexpr (Stepped) {
          xp += S * kLanes;
          opaque(xp);
          xr[kh] = xp;
        }
      }
      if (Bias) acc[N - 1] += gv;
    }
  }
#pragma GCC unroll 26
  for (int t = 0; t < GR * K; ++t) store(part + (KH0 * K + t) * kLanes + lb, acc[t]);
  if (Bias) store(part + K * K * kLanes + lb, acc[N - 1]);
}

// the tap rows from KH0 on, in groups whose K sums a row (and the bias, g and one input) fit the
// registers (32: every row at once; 16: two rows of 5 taps, three of 3)
template <int K, int S, int RL, int KH0, class T>
inline void weight_rows_nhwc(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH, int64_t OW, int lb,
                             T* part) {
  constexpr int GR = group_tap_rows(K, 4, KH0);
  weight_piece_nhwc<K, S, RL, KH0, GR>(x, pitch, g, gpitch, OH, OW, lb, part);
  if constexpr (KH0 + GR < K) weight_rows_nhwc<K, S, RL, KH0 + GR>(x, pitch, g, gpitch, OH, OW, lb, part);
}

template <int K, int S, class T>
void weight_plane_nhwc(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH, int64_t OW, T* part) {
  constexpr int RL = reg_lanes<T>();
  for (int lb = 0; lb < kLanes; lb += RL) weight_rows_nhwc<K, S, RL, 0>(x, pitch, g, gpitch, OH, OW, lb, part);
}

}  // namespace

template <class T>
void weight_nhwc(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH, int64_t OW, int64_t K, int64_t S,
                 T* part) {
  if (K == 3 && S == 1) return weight_plane_nhwc<3, 1>(x, pitch, g, gpitch, OH, OW, part);
  if (K == 3 && S == 2) return weight_plane_nhwc<3, 2>(x, pitch, g, gpitch, OH, OW, part);
  if (K == 5 && S == 1) return weight_plane_nhwc<5, 1>(x, pitch, g, gpitch, OH, OW, part);
  weight_plane_nhwc<5, 2>(x, pitch, g, gpitch, OH, OW, part);
}

namespace {

// the input gradient of P output pixels of one row (g: their 16-channel gradients; the RL lanes
// from lb) scattered into K zero-padded channels_last rows: rows[kh][(q * S + kw) * 16 + l] +=
// w[(kh * K + kw) * 16 + l] * g[q][l], tap row by tap row, kw by kw, pixel by pixel (the row's
// (P - 1) * S + K sums in registers)
template <int K, int S, int P, int RL, class T>
__attribute__((noinline)) void input_block_nhwc(const T* g, const T* w, T* const* rows, int64_t q0, int lb) {
  typedef typename Vec<T, RL>::type V;
  constexpr int U = (P - 1) * S + K;
  V gv[P];
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) gv[q] = load<V>(g + (q0 + q) * kLanes + lb);
#pragma GCC unroll 5
  for (int kh = 0; kh < K; ++kh) {
    T* row = rows[kh] + q0 * S * kLanes + lb;
    V acc[U];
#pragma GCC unroll 24
    for (int u = 0; u < U; ++u) acc[u] = load<V>(row + u * kLanes);
#pragma GCC unroll 5
    for (int kw = 0; kw < K; ++kw) {
      const V wk = load<V>(w + (kh * K + kw) * kLanes + lb);
#pragma GCC unroll 8
      for (int q = 0; q < P; ++q) acc[q * S + kw] += wk * gv[q];
    }
#pragma GCC unroll 24
    for (int u = 0; u < U; ++u) store(row + u * kLanes, acc[u]);
    asm volatile("" ::: "memory");
  }
}

// blocks of P pixels (32 registers: 8; 16: as many as the forward's blocks), then single pixels;
// lanes in pieces of one register
template <int K, int S, class T>
void input_row_nhwc_k(const T* g, int64_t OW, const T* w, T* const* rows) {
  constexpr int RL = reg_lanes<T>(), P = kRegisters >= 32 ? 8 : nhwc_block_pixels(K, S);
  for (int lb = 0; lb < kLanes; lb += RL) {
    int64_t q = 0;
    for (; q + P <= OW; q += P) input_block_nhwc<K, S, P, RL>(g, w, rows, q, lb);
    for (; q < OW; ++q) input_block_nhwc<K, S, 1, RL>(g, w, rows, q, lb);
  }
}

}  // namespace

template <class T>
void input_row_nhwc(const T* g, int64_t OW, const T* w, int64_t K, int64_t S, T* const* rows) {
  if (K == 3 && S == 1) return input_row_nhwc_k<3, 1>(g, OW, w, rows);
  if (K == 3 && S == 2) return input_row_nhwc_k<3, 2>(g, OW, w, rows);
  if (K == 5 && S == 1) return input_row_nhwc_k<5, 1>(g, OW, w, rows);
  input_row_nhwc_k<5, 2>(g, OW, w, rows);
}

template <class T>
void forward_pixel_nhwc(const T* const* src, const int64_t* tap_index, int64_t taps, const T* w, const T* bias,
                        int64_t C, int64_t c0, int64_t c1, T* out) {
  int64_t c = c0;
  for (; c + 4 * kLanes <= c1; c += 4 * kLanes) pixel_block4(src, tap_index, taps, w, bias, C, c, out);
  over_channels(c, c1, [&](auto lanes, int64_t cc) {
    pixel_block<decltype(lanes)::value>(src, tap_index, taps, w, bias, C, cc, out);
  });
}

template void forward_row_nhwc<float>(const float* const*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                     const float*, const float*, int64_t, int64_t, int64_t, float*);
template void forward_rows_nhwc<float>(const float* const*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                      const float*, const float*, int64_t, int64_t, int64_t, float*);
template void forward_pixel_nhwc<float>(const float* const*, const int64_t*, int64_t, const float*, const float*, int64_t,
                                       int64_t, int64_t, float*);
template void weight_nhwc<float>(const float*, int64_t, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);
template void input_row_nhwc<float>(const float*, int64_t, const float*, int64_t, int64_t, float* const*);
template void forward_row_nhwc<double>(const double* const*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                     const double*, const double*, int64_t, int64_t, int64_t, double*);
template void forward_rows_nhwc<double>(const double* const*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                      const double*, const double*, int64_t, int64_t, int64_t, double*);
template void forward_pixel_nhwc<double>(const double* const*, const int64_t*, int64_t, const double*, const double*, int64_t,
                                       int64_t, int64_t, double*);
template void weight_nhwc<double>(const double*, int64_t, const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double*);
template void input_row_nhwc<double>(const double*, int64_t, const double*, int64_t, int64_t, double* const*);

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
