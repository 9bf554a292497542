// Per-ISA loops of the depthwise convolution (vision/depthwise_per_isa.h); see core/isa_unit.h.
// Fast paths: 3x3 and 5x5 at stride 1 (dilation 1) and stride 2 (split layout); every other
// shape takes the generic loops, with the same summation order.
#include <algorithm>

#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/depthwise_per_isa.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

enum Mode { kGeneric = 0, kStride1 = 1, kSplit2 = 2 };

// The data layouts keep blocks of kLanes (16) channels or outputs at every level; the
// register-blocked kernels below work on a block in pieces of at most reg_lanes<T> lanes and size
// their blocks to the level's register count (core/isa_vec.h), so that their sums stay in
// registers. A lane's sums are the same whatever the piece it is computed in.
template <class T>
constexpr int reg_lanes() {
  return register_lanes<T, kLanes>();
}

// kLanes values as one GCC vector (a zmm on AVX-512, two ymm on AVX2, four xmm on SSE2 for float;
// only where such a vector fits the level's registers, or is only loaded and stored)
template <class T>
struct Lanes {
  typedef typename Vec<T, kLanes>::type V;
  typedef typename Mask<T, kLanes>::type M;
};

// the padded input element read by tap (kh, kw) for output ow
template <int M, class Row>
inline auto tap(const Row& a, int64_t kh, int64_t kw, int64_t ow) -> decltype(a.plane) {
  const int64_t r = (a.r0 + kh * a.dh) * a.stride;
  if (M == kStride1) return a.plane + r + ow + kw;
  if (M == kSplit2) return a.quad[(kh & 1) * 2 + (kw & 1)] + ((a.r0 >> 1) + (kh >> 1)) * a.stride + ow + (kw >> 1);
  return a.plane + r + ow * a.s + kw * a.d;
}

// B vectors of outputs [ow, ow + B * kLanes), of which the first n are stored; held as
// B * kLanes / RL registers of RL = reg_lanes<T> lanes (a scalar times a 16-lane vector of two or
// four registers is built through the stack by GCC)
template <int M, int K, int B, class T>
inline void forward_block(const DwRow<T>& a, const T* w, T bias, int64_t ow, T* out, int64_t n) {
  constexpr int RL = reg_lanes<T>(), NV = B * kLanes / RL;
  typedef typename Vec<T, RL>::type V;
  const int64_t KH = K ? K : a.KH, KW = K ? K : a.KW;
  V acc[NV];
  for (int b = 0; b < NV; ++b) acc[b] = V{} + bias;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const T wv = w[kh * KW + kw];
      const T* x = tap<M>(a, kh, kw, ow);
      for (int b = 0; b < NV; ++b) acc[b] += wv * load<V>(x + b * RL);
    }
  if (n == B * kLanes) {
    for (int b = 0; b < NV; ++b) store(out + b * RL, acc[b]);
    return;
  }
  T rest[B * kLanes];
  for (int b = 0; b < NV; ++b) store(rest + b * RL, acc[b]);
  for (int64_t l = 0; l < n; ++l) out[l] = rest[l];
}

// Stride 1, R consecutive output rows at once: the vectors at positions p + j * P (j < R, P the
// row pitch). Padded row i of the block (i < R + K - 1) at column shift kw is loaded once and
// feeds output row j = i - kh for every kh, so a block loads (R + K - 1) * K vectors for R * K * K
// multiply-adds instead of one load per multiply-add. Each output still adds bias, then its taps
// in (kh, kw) order (i rises):
// the bits of forward_block.
template <int K, int R, class T>
inline void forward_rows_block(const T* x, int64_t P, const typename Lanes<T>::V* wv, T bias, T* out) {
  typedef typename Lanes<T>::V V;
  V acc[R];
  for (int j = 0; j < R; ++j) acc[j] = V{} + bias;
#pragma GCC unroll 16
  for (int i = 0; i < R + K - 1; ++i)
#pragma GCC unroll 8
    for (int kw = 0; kw < K; ++kw) {
      const V xv = load<V>(x + i * P + kw);
#pragma GCC unroll 8
      for (int j = 0; j < R; ++j)
        if (i - j >= 0 && i - j < K) acc[j] += wv[(i - j) * K + kw] * xv;
    }
  for (int j = 0; j < R; ++j) store(out + j * P, acc[j]);
}

template <int M, int K, class T>
void forward_row_impl(const DwRow<T>& a, const T* w, T bias, T* out) {
  const int64_t KH = K ? K : a.KH, KW = K ? K : a.KW;
  int64_t ow = 0;
  if constexpr (M == kStride1) {
    // a virtual row (a whole plane): blocks of R rows; a row's last vector runs into the next
    // row's first positions, which that row computes again to the same bits
    constexpr int R = 4;  // 4 accumulators + 25 weights fit the 32 vector registers
    const int64_t P = a.stride;
    // (a dilated row step keeps forward_block; so do the 16-register levels, where the weights
    // and accumulators of a 16-lane block do not fit)
    if (kRegisters >= 32 && a.sh == 1 && a.dh == 1 && a.OW >= R * P + kLanes) {
      typedef typename Lanes<T>::V V;
      V wv[K * K];
      for (int t = 0; t < K * K; ++t) wv[t] = V{} + w[t];
      const T* x = a.plane + a.r0 * a.stride;
      for (; ow + R * P + kLanes <= a.OW; ow += R * P)
        for (int64_t q = 0; q < P; q += kLanes) forward_rows_block<K, R>(x + ow + q, P, wv, bias, out + ow + q);
    }
  }
  if (M == kGeneric) {
    for (int64_t ow = 0; ow < a.OW; ++ow) {
      T acc = bias;
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) acc += w[kh * KW + kw] * *tap<M>(a, kh, kw, ow);
      out[ow] = acc;
    }
    return;
  }
  // whole vectors, B at a time (independent FMA chains: as many 16-lane sums as fit the registers
  // with a weight and an input, at most 8), then four, then the last one to four together; the
  // last vector's extra lanes read the slack and are not stored
  constexpr int regs = kLanes / reg_lanes<T>(), B = 8 * regs + 2 <= kRegisters ? 8 : 4 * regs + 2 <= kRegisters ? 4 : 2;
  for (; ow + B * kLanes <= a.OW; ow += B * kLanes) forward_block<M, K, B>(a, w, bias, ow, out + ow, B * kLanes);
  if (ow + 4 * kLanes <= a.OW) {
    forward_block<M, K, 4>(a, w, bias, ow, out + ow, 4 * kLanes);
    ow += 4 * kLanes;
  }
  const int64_t rest = a.OW - ow, vectors = (rest + kLanes - 1) / kLanes;
  if (vectors == 4) forward_block<M, K, 4>(a, w, bias, ow, out + ow, rest);
  if (vectors == 3) forward_block<M, K, 3>(a, w, bias, ow, out + ow, rest);
  if (vectors == 2) forward_block<M, K, 2>(a, w, bias, ow, out + ow, rest);
  if (vectors == 1) forward_block<M, K, 1>(a, w, bias, ow, out + ow, rest);
}

// The weight-gradient kernels keep K sums per tap row in registers: the rows of the group that
// starts at tap row kh0, as many as fit beside `others` other registers (at least one)
constexpr int group_tap_rows(int K, int others, int kh0) {
  const int fit = (kRegisters - others) / K < 1 ? 1 : (kRegisters - others) / K;
  return fit < K - kh0 ? fit : K - kh0;
}

// lanes [lb, lb + RL) of the weight-gradient partials of tap rows [KH0, KH0 + GR) (and of the
// bias, with the first rows), in registers over the whole row; every partial sums its products in
// ow order whatever the piece
template <int M, int K, int RL, int KH0, int GR, class T>
inline void weight_row_piece(const DwRow<T>& a, const T* g, T* part, T* part_bias, int lb) {
  typedef typename Vec<T, RL>::type V;
  typedef typename Mask<T, RL>::type Mask;
  constexpr bool Bias = KH0 == 0;
  constexpr int N = GR * K + (Bias ? 1 : 0);
  Mask lane;
  for (int l = 0; l < RL; ++l) lane[l] = lb + l;
  V acc[N];
  for (int t = 0; t < GR * K; ++t) acc[t] = load<V>(part + (KH0 * K + t) * kLanes + lb);
  if (Bias) acc[N - 1] = load<V>(part_bias + lb);
  for (int64_t ow = 0; ow < a.OW; ow += kLanes) {
    typedef decltype(lane[0] + 0) Index;
    Mask use = lane < Mask{} + Index(a.OW - ow < kLanes ? a.OW - ow : kLanes);  // -1 where the lane is an output
    if (a.valid) {
      Mask ok;
      for (int l = 0; l < RL; ++l) ok[l] = a.valid[ow + lb + l] ? -1 : 0;
      use &= ok;
    }
    const V g_lanes = load<V>(g + ow + lb), zero = V{};
    if (Bias) acc[N - 1] += use ? g_lanes : zero;
    for (int kh = 0; kh < GR; ++kh)
      for (int kw = 0; kw < K; ++kw)
        acc[kh * K + kw] += use ? g_lanes * load<V>(tap<M>(a, KH0 + kh, kw, ow) + lb) : zero;
  }
  for (int t = 0; t < GR * K; ++t) store(part + (KH0 * K + t) * kLanes + lb, acc[t]);
  if (Bias) store(part_bias + lb, acc[N - 1]);
}

// the tap rows from KH0 on, in groups whose partials fit the registers with g, the mask and an
// input (32 registers: every row at once; 16: two rows of 5 taps, three of 3)
template <int M, int K, int RL, int KH0, class T>
inline void weight_row_rows(const DwRow<T>& a, const T* g, T* part, T* part_bias, int lb) {
  constexpr int GR = group_tap_rows(K, 5, KH0);
  weight_row_piece<M, K, RL, KH0, GR>(a, g, part, part_bias, lb);
  if constexpr (KH0 + GR < K) weight_row_rows<M, K, RL, KH0 + GR>(a, g, part, part_bias, lb);
}

template <int M, int K, class T>
void weight_row_impl(const DwRow<T>& a, const T* g, T* part, T* part_bias) {
  if constexpr (M == kGeneric) {
    const int64_t KH = a.KH, KW = a.KW;
    for (int64_t ow = 0; ow < a.OW; ++ow) {
      if (a.valid && !a.valid[ow]) continue;
      const int64_t l = ow % kLanes;
      part_bias[l] += g[ow];
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) part[(kh * KW + kw) * kLanes + l] += g[ow] * *tap<M>(a, kh, kw, ow);
    }
  } else {
    constexpr int RL = reg_lanes<T>();
    for (int lb = 0; lb < kLanes; lb += RL) weight_row_rows<M, K, RL, 0>(a, g, part, part_bias, lb);
  }
}

template <int M, int K, class T>
void input_row_impl(const DwRowMut<T>& a, const T* w, const T* g) {
  const int64_t KH = K ? K : a.KH, KW = K ? K : a.KW;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const T wv = w[kh * KW + kw];
      if (M == kGeneric) {
        for (int64_t ow = 0; ow < a.OW; ++ow) *tap<M>(a, kh, kw, ow) += wv * g[ow];
      } else {
        T* x = tap<M>(a, kh, kw, 0);
#pragma GCC ivdep
        for (int64_t ow = 0; ow < a.OW; ++ow) x[ow] += wv * g[ow];
      }
    }
}

// The loop variant of a row: a fast path (mode, kernel size) or the generic loops
template <int M_, int K_>
struct Path {
  static constexpr int M = M_, K = K_;
};

template <class Row, class F>
inline void with_path(const Row& a, F&& f) {
  const bool k3 = a.KH == 3 && a.KW == 3, k5 = a.KH == 5 && a.KW == 5;
  if (a.s == 1 && a.d == 1 && k3) return f(Path<kStride1, 3>{});
  if (a.s == 1 && a.d == 1 && k5) return f(Path<kStride1, 5>{});
  if (split_stride2(a.KH, a.KW, a.sh, a.s, a.dh, a.d)) {
    if (k3) return f(Path<kSplit2, 3>{});
    return f(Path<kSplit2, 5>{});
  }
  f(Path<kGeneric, 0>{});
}

template <class T>
void forward_row(const DwRow<T>& a, const T* w, T bias, T* out) {
  with_path(a, [&](auto p) { forward_row_impl<decltype(p)::M, decltype(p)::K>(a, w, bias, out); });
}

template <class T>
void weight_row(const DwRow<T>& a, const T* g, T* part, T* part_bias) {
  with_path(a, [&](auto p) { weight_row_impl<decltype(p)::M, decltype(p)::K>(a, g, part, part_bias); });
}

template <class T>
void input_row(const DwRowMut<T>& a, const T* w, const T* g) {
  with_path(a, [&](auto p) { input_row_impl<decltype(p)::M, decltype(p)::K>(a, w, g); });
}

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

template <class T>
void forward_row_nhwc(const T* const* rows, int64_t KH, int64_t KW, int64_t iw0, int64_t n, int64_t s, int64_t d,
                      const T* w, const T* bias, int64_t C, int64_t c0, int64_t c1, T* out) {
  int64_t q = 0;
  for (; q + 4 <= n; q += 4) nhwc_pixels<4>(rows, KH, KW, iw0 + q * s, s, d, w, bias, C, c0, c1, out + q * C);
  for (; q < n; ++q) nhwc_pixels<1>(rows, KH, KW, iw0 + q * s, s, d, w, bias, C, c0, c1, out + q * C);
}

// p as a value the compiler cannot see through: a pointer stepped by a runtime pitch stays one
// register (else it keeps one pointer or offset per step, out of general registers, and spills
// them: the planes of the transposes, the pixels of rows_block_nhwc, the taps of weight_piece_nhwc)
template <class P>
inline void opaque(P*& p) {
  asm("" : "+r"(p));
}

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

template <class T>
void forward_rows_nhwc(const T* const* rows, const T* zero, int64_t K, int64_t S, int64_t pad_w, int64_t W, int64_t n, const T* w,
                       const T* bias, int64_t C, int64_t c0, int64_t c1, T* out) {
  if (K == 3 && S == 1) return rows_nhwc<3, 1>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  if (K == 3 && S == 2) return rows_nhwc<3, 2>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  if (K == 5 && S == 1) return rows_nhwc<5, 1>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
  rows_nhwc<5, 2>(rows, zero, pad_w, W, n, w, bias, C, c0, c1, out);
}

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

template <class T>
void weight_nhwc(const T* x, int64_t pitch, const T* g, int64_t gpitch, int64_t OH, int64_t OW, int64_t K, int64_t S,
                 T* part) {
  if (K == 3 && S == 1) return weight_plane_nhwc<3, 1>(x, pitch, g, gpitch, OH, OW, part);
  if (K == 3 && S == 2) return weight_plane_nhwc<3, 2>(x, pitch, g, gpitch, OH, OW, part);
  if (K == 5 && S == 1) return weight_plane_nhwc<5, 1>(x, pitch, g, gpitch, OH, OW, part);
  weight_plane_nhwc<5, 2>(x, pitch, g, gpitch, OH, OW, part);
}

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

// inline vector copies (short rows: a library memcpy per row costs more than the copy)
template <class T>
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void copy_rows(const T* src, int64_t src_pitch, T* dst,
                                                                              int64_t dst_pitch, int64_t rows,
                                                                              int64_t cols) {
  typedef typename Lanes<T>::V V;
  for (int64_t r = 0; r < rows; ++r) {
    const T* a = src + r * src_pitch;
    T* b = dst + r * dst_pitch;
    int64_t c = 0;
    for (; c + kLanes <= cols; c += kLanes) store(b + c, load<V>(a + c));
    for (; c < cols; ++c) b[c] = a[c];
  }
}

// an RL x RL block (RL vectors of RL lanes) transposed in registers: rounds swapping the
// off-diagonal b x b blocks of every 2b x 2b block, b = RL / 2 ... 1 (rows i and i + b: lanes with
// bit b of row i <-> lanes without it of row i + b)
template <class T, int RL, int b>
inline void transpose_round(typename Vec<T, RL>::type* r) {
  typedef typename Mask<T, RL>::type M;
  M lo, hi;
  for (int l = 0; l < RL; ++l) {
    lo[l] = (l & b) ? RL + l - b : l;
    hi[l] = (l & b) ? RL + l : l + b;
  }
  for (int i = 0; i < RL; ++i)
    if (!(i & b)) {
      const typename Vec<T, RL>::type a = r[i], c = r[i + b];
      r[i] = __builtin_shuffle(a, c, lo);
      r[i + b] = __builtin_shuffle(a, c, hi);
    }
}

template <class T, int RL>
inline void transpose_square(typename Vec<T, RL>::type* r) {
  if constexpr (RL >= 16) transpose_round<T, RL, 8>(r);
  if constexpr (RL >= 8) transpose_round<T, RL, 4>(r);
  if constexpr (RL >= 4) transpose_round<T, RL, 2>(r);
  if constexpr (RL >= 2) transpose_round<T, RL, 1>(r);
}

// element q of an H x W plane as the channels_last pixel (h, w) of a buffer with rows of `pitch`
// pixels of 16 lanes, stepped element by element
struct PixelCursor {
  int64_t W, pitch, h = 0, w = 0;
  int64_t offset() const { return (h * pitch + w) * kLanes; }
  void next() {
    if (++w == W) w = 0, ++h;
  }
  // the offsets of the next 16 elements (one tile), stepping past them
  void tile(int64_t* off) {
    for (int i = 0; i < kLanes; ++i, next()) off[i] = offset();
  }
};

// A tile touches one 64-byte stretch of each of 16 planes (p: the first plane's; the planes
// l < lanes exist): fetched some tiles ahead, for reading (Write = 0) or writing, since 16
// interleaved plane streams outrun the hardware prefetcher (the plane loads were the transposes'
// hot spot)
template <int Write, class T>
inline void prefetch_planes(T* p, int64_t plane, int64_t lanes) {
  for (int l = 0; l < kLanes; ++l) {
    if (l < lanes) __builtin_prefetch(p, Write);
    p += plane;
    opaque(p);
  }
}

#if defined(__AVX__) && !defined(__AVX512F__)
// AVX float: r[j][i] = r[i][j] for the 8 x 8 block, in 24 in-lane unpacks, shuffles and 128-bit
// permutes (GCC's lowering of transpose_square's generic shuffles takes about twice as many)
inline void transpose8(__m256* r) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// The transposes of a block (the planes l < lanes of 16) with image rows of at least 8 elements,
// AVX float: each image row in pieces of 8 elements (the last piece overlapping the one before
// where W is not a multiple of 8: those elements are moved twice, to the same places), a piece's
// 16 planes as two 8 x 8 transposes (planes past the last channel: zeros in, not stored out), its
// 8 pixels' 64 bytes stored contiguously: no tile offsets to compute (the tiles of 16 elements of
// the general code wrap the rows of 10- and 20-pixel images). The last block of C = 132 (4 lanes)
// took the general code and cost more than a full block.
inline void planes_to_pixels_rows(const float* src, int64_t plane, int64_t lanes, int64_t H, int64_t W, float* dst,
                                  int64_t pitch) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t w0 = 0; w0 < W; w0 += 8) {
      const int64_t w = w0 + 8 <= W ? w0 : W - 8;
      float* d = dst + (h * pitch + w) * kLanes;
      const float* p = src + h * W + w;
      for (int lb = 0; lb < kLanes; lb += 8) {
        __m256 r[8];
        for (int l = 0; l < 8; ++l) {
          if (lb + l < lanes) {  // the planes past the last channel read as zeros
            r[l] = _mm256_loadu_ps(p);
            p += plane;
            opaque(p);
          } else {
            r[l] = _mm256_setzero_ps();
          }
        }
        transpose8(r);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + j * kLanes + lb, r[j]);
      }
    }
}
inline void pixels_to_planes_rows(const float* src, int64_t pitch, int64_t lanes, int64_t H, int64_t W, float* dst,
                                  int64_t plane) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t w0 = 0; w0 < W; w0 += 8) {
      const int64_t w = w0 + 8 <= W ? w0 : W - 8;
      const float* s = src + (h * pitch + w) * kLanes;
      float* p = dst + h * W + w;
      for (int lb = 0; lb < kLanes && lb < lanes; lb += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(s + j * kLanes + lb);
        transpose8(r);
        for (int l = 0; l < 8 && lb + l < lanes; ++l) {  // only the planes of existing channels
          _mm256_storeu_ps(p, r[l]);
          p += plane;
          opaque(p);
        }
      }
    }
}
#endif

// The transposes move 16 x 16 tiles (16 planes x 16 elements <-> 16 pixels x 16 lanes) as
// (16 / RL)^2 register transposes of RL x RL, RL = one register's lanes (AVX-512 float: the whole
// tile; AVX2 float: four 8 x 8), so that a tile piece stays in the registers.
template <class T>
void planes_to_pixels(const T* src, int64_t plane, int64_t lanes, int64_t H, int64_t W, T* dst, int64_t pitch) {
#if defined(__AVX__) && !defined(__AVX512F__)
  if constexpr (sizeof(T) == 4)
    if (W >= 8) return planes_to_pixels_rows(src, plane, lanes, H, W, dst, pitch);
#endif
  constexpr int RL = reg_lanes<T>();
  typedef typename Vec<T, RL>::type V;
  const int64_t n = H * W;
  PixelCursor at{W, pitch};
  int64_t q = 0;
  for (; q + kLanes <= n; q += kLanes) {
    if (q + 5 * kLanes <= n) prefetch_planes<0>(src + q + 4 * kLanes, plane, lanes);
    int64_t off[kLanes];
    at.tile(off);
    for (int lb = 0; lb < kLanes; lb += RL) {
      const int64_t rows = lanes - lb;  // planes of this piece that exist (the others read as zeros)
      for (int pb = 0; pb < kLanes; pb += RL) {
        V r[RL];
        const T* p = src + lb * plane + q + pb;
        for (int l = 0; l < RL; ++l) {
          r[l] = (lanes == kLanes || l < rows) ? load<V>(p) : V{};
          p += plane;
          opaque(p);
        }
        transpose_square<T, RL>(r);
        for (int j = 0; j < RL; ++j) store(dst + off[pb + j] + lb, r[j]);
      }
    }
  }
  for (; q < n; ++q, at.next())
    for (int l = 0; l < kLanes; ++l) dst[at.offset() + l] = l < lanes ? src[l * plane + q] : T(0);
}

template <class T>
void pixels_to_planes(const T* src, int64_t pitch, int64_t lanes, int64_t H, int64_t W, T* dst, int64_t plane) {
#if defined(__AVX__) && !defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    if (pitch == W && H * W >= 8)  // rows back to back: the plane as one row
      return pixels_to_planes_rows(src, pitch * H, lanes, 1, H * W, dst, plane);
    if (W >= 8) return pixels_to_planes_rows(src, pitch, lanes, H, W, dst, plane);
  }
#endif
  constexpr int RL = reg_lanes<T>();
  typedef typename Vec<T, RL>::type V;
  const int64_t n = H * W;
  PixelCursor at{W, pitch};
  int64_t q = 0;
  for (; q + kLanes <= n; q += kLanes) {
    if (q + 5 * kLanes <= n) prefetch_planes<1>(dst + q + 4 * kLanes, plane, lanes);
    int64_t off[kLanes];
    at.tile(off);
    for (int lb = 0; lb < kLanes && lb < lanes; lb += RL) {
      const int64_t rows = lanes - lb;  // planes of this piece to write
      for (int pb = 0; pb < kLanes; pb += RL) {
        V r[RL];
        for (int j = 0; j < RL; ++j) r[j] = load<V>(src + off[pb + j] + lb);
        transpose_square<T, RL>(r);
        T* p = dst + lb * plane + q + pb;
        for (int l = 0; l < RL; ++l) {
          if (lanes == kLanes || l < rows) store(p, r[l]);
          p += plane;
          opaque(p);
        }
      }
    }
  }
  for (; q < n; ++q, at.next())
    for (int64_t l = 0; l < lanes; ++l) dst[l * plane + q] = src[at.offset() + l];
}

template <class T>
void deinterleave(const T* src, int64_t n, T* even, T* odd) {
  constexpr int RL = reg_lanes<T>();
  typedef typename Vec<T, RL>::type V;
  typedef typename Mask<T, RL>::type Mask;
  Mask pick_even, pick_odd;
  for (int l = 0; l < RL; ++l) {
    pick_even[l] = 2 * l;
    pick_odd[l] = 2 * l + 1;
  }
  int64_t i = 0;
  for (; 2 * i + 2 * RL <= n; i += RL) {
    const V a = load<V>(src + 2 * i), b = load<V>(src + 2 * i + RL);
    store(even + i, __builtin_shuffle(a, b, pick_even));
    store(odd + i, __builtin_shuffle(a, b, pick_odd));
  }
  for (; 2 * i < n; ++i) {
    even[i] = src[2 * i];
    if (2 * i + 1 < n) odd[i] = src[2 * i + 1];
  }
}


#if defined(__AVX512F__)
// The flat-plane kernels (FlatPlane, depthwise_per_isa.h), AVX-512 float32. Vector v of an inside
// row of vectors reads tap row kh at offset (kh - 1) * W as three vectors, at 16 v - 16, 16 v and
// 16 v + 16 (the first loaded with the one lane it gives), and builds the taps
// kw = 0 and 2 from them with valignd, so that a tap row costs one unaligned load instead of
// three (two of which straddle cache lines when W is not a multiple of 16). The lanes whose tap
// column lies in the padding are masked out of the multiply-adds (skipped, not multiplied by
// zeros). A tap row's three products chain from its own sum (the first from the bias) and the
// three rows add after: three chains of three instead of one of nine, which waited on the FMA
// latency.
namespace flat {

constexpr int K = 3, KK = 9;

// The masks of the taps kw = 0 and 2 of the current vector: the lanes not in the first, or not in
// the last, column. They repeat every f.phases vectors and come from f.edge (kmovw from memory),
// not from the lanes' columns stepped along in registers: that step (add, compare into a mask,
// masked subtract) was a chain from each vector to the next, and it set the pace.
struct Columns {
  const uint16_t* edge;
  int64_t phase, phases;
  explicit Columns(const FlatPlane& f) : edge(f.edge), phase(f.v_lo % f.phases), phases(f.phases) {}
  __mmask16 left() const { return edge[2 * phase]; }
  __mmask16 right() const { return edge[2 * phase + 1]; }
  void next() { phase = phase + 1 == phases ? 0 : phase + 1; }
};

// the elements at offset -1 and +1 of b, from the vectors before (a) and after (c) it
inline __m512 before(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(b), _mm512_castps_si512(a), 15));
}
inline __m512 after(__m512 b, __m512 c) {
  return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(c), _mm512_castps_si512(b), 1));
}

inline __mmask16 lanes_before(int64_t n) { return __mmask16(n >= 16 ? 0xFFFF : (1u << n) - 1); }

// The 16 floats plane[off + i] of a plane of n floats, 0 in the lanes outside [0, n), without
// forming a pointer outside [plane, plane + n]: a masked load from such a pointer does not fault,
// but the pointer itself is undefined behaviour and hides the access from AddressSanitizer. Lanes
// before the plane are filled by an expand-load from its start (the lanes it fills are contiguous).
inline __m512 load_window(const float* plane, int64_t n, int64_t off) {
  if (off >= 0) {
    if (off + 16 <= n) return _mm512_loadu_ps(plane + off);
    return off >= n ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(lanes_before(n - off), plane + off);
  }
  if (off <= -16) return _mm512_setzero_ps();
  const int64_t first = -off, count = std::min<int64_t>(16 - first, n);
  return _mm512_maskz_expandloadu_ps(__mmask16(((1u << count) - 1) << first), plane);
}

// a row of vectors' three vectors: the first for its last lane only (the element before the
// vector's first, inside the plane where the others may not be)
struct Window {
  __m512 v[K][3];
  void start(const float* plane, int64_t n, int64_t j, int64_t W) {  // j: the first inside vector's element
    for (int kh = 0; kh < K; ++kh) {
      v[kh][0] = load_window(plane, n, j + (kh - 1) * W - 16);
      v[kh][1] = _mm512_loadu_ps(plane + j + (kh - 1) * W);
    }
  }
  // the next vector (inside the plane for every inside vector: FlatPlane); no branch here for the
  // last one (a masked load there, chosen per vector, made GCC keep the backward's sums in
  // memory, stored every vector)
  void load_next(const float* p, int64_t W) {  // p: the current vector
    for (int kh = 0; kh < K; ++kh) v[kh][2] = _mm512_loadu_ps(p + (kh - 1) * W + 16);
  }
  __m512 tap(int kh, int kw) const {
    return kw == 0 ? before(v[kh][0], v[kh][1]) : kw == 1 ? v[kh][1] : after(v[kh][1], v[kh][2]);
  }
  void shift() {
    for (int kh = 0; kh < K; ++kh) {
      v[kh][0] = v[kh][1];
      v[kh][1] = v[kh][2];
    }
  }
};

// the 9 tap masks of border vector v (v < v_lo or v >= v_hi: FlatPlane::border)
inline const uint16_t* border_masks(const FlatPlane& f, int64_t v) {
  return f.border + (v < f.v_lo ? v : v - f.v_hi + f.v_lo) * KK;
}

// tap t's products of the lanes in mask k added to acc (acc kept in the other lanes)
inline __m512 add_tap(__m512 acc, __m512 a, __m512 b, __mmask16 k) { return _mm512_mask3_fmadd_ps(a, b, acc, k); }

inline __m512 rows_sum(const __m512* r) { return _mm512_add_ps(_mm512_add_ps(r[0], r[1]), r[2]); }

void forward_plane(const float* x, const FlatPlane& f, const float* w, float bias, float* out) {
  __m512 wv[KK];
  for (int t = 0; t < KK; ++t) wv[t] = _mm512_set1_ps(w[t]);
  const int64_t W = f.W;
  auto border = [&](int64_t v) {  // every tap masked
    const uint16_t* m = border_masks(f, v);
    __m512 r[K];
    for (int kh = 0; kh < K; ++kh) {
      r[kh] = kh == 0 ? _mm512_set1_ps(bias) : _mm512_setzero_ps();
      for (int kw = 0; kw < K; ++kw) {
        const __mmask16 k = m[kh * K + kw];
        r[kh] = add_tap(r[kh], load_window(x, f.HW, 16 * v + (kh - 1) * W + kw - 1), wv[kh * K + kw], k);
      }
    }
    _mm512_mask_storeu_ps(out + 16 * v, lanes_before(f.HW - 16 * v), rows_sum(r));
  };
  for (int64_t v = 0; v < f.v_lo; ++v) border(v);
  Columns cols(f);
  Window win;
  if (f.v_hi > f.v_lo) win.start(x, f.HW, 16 * f.v_lo, W);
  for (int64_t v = f.v_lo; v < f.v_hi; ++v) {
    const __mmask16 edge[K] = {cols.left(), __mmask16(0xFFFF), cols.right()};
    cols.next();
    win.load_next(x + 16 * v, W);
    __m512 r[K];
    for (int kh = 0; kh < K; ++kh) {
      r[kh] = kh == 0 ? _mm512_set1_ps(bias) : _mm512_setzero_ps();
      r[kh] = add_tap(r[kh], win.tap(kh, 0), wv[kh * K], edge[0]);
      r[kh] = _mm512_fmadd_ps(win.tap(kh, 1), wv[kh * K + 1], r[kh]);
      r[kh] = add_tap(r[kh], win.tap(kh, 2), wv[kh * K + 2], edge[2]);
    }
    win.shift();
    _mm512_storeu_ps(out + 16 * v, rows_sum(r));
  }
  for (int64_t v = f.v_hi; v < f.nvec; ++v) border(v);
}

// The weight gradient of tap t, sum over the outputs o of g[o] * x[o + off(t)], is taken as sum
// over the inputs j of g[j - off(t)] * x[j] = g[j + off(8 - t)] * x[j]: the shifted gradients that
// grad_input multiplies by the flipped weights (g[j + off(t')] * w[8 - t']) serve it too, so only
// g takes the windows and x is read once per vector (6 valignd instead of 12). Tap t' of lane j
// is masked where j + off(t') lies outside the plane, in both sums. The partials (part: 9 taps
// and the bias, 16 lanes each) are added vector by vector in order: the border vectors before
// v_lo, the inside ones, the border vectors from v_hi.
template <bool GX, bool GW>
inline void backward_taps(__m512* acc, __m512* r, const __m512* wf, int t, __m512 gs, __m512 xv, __mmask16 k) {
  if (GW) acc[KK - 1 - t] = add_tap(acc[KK - 1 - t], gs, xv, k);
  if (GX) r[t / K] = add_tap(r[t / K], gs, wf[t], k);
}

// the border vectors [v0, v1) (each tap masked by f.border)
template <bool GX, bool GW>
void backward_border(const float* x, const float* g, const FlatPlane& f, const __m512* wf, float* gx, float* part,
                     int64_t v0, int64_t v1) {
  __m512 acc[KK + 1];
  for (int t = 0; t <= KK && GW; ++t) acc[t] = _mm512_loadu_ps(part + 16 * t);
  for (int64_t v = v0; v < v1; ++v) {
    const uint16_t* m = border_masks(f, v);
    const int64_t j = 16 * v;
    const __mmask16 live = lanes_before(f.HW - j);
    const __m512 xv = GW ? _mm512_maskz_loadu_ps(live, x + j) : _mm512_setzero_ps();
    if (GW) acc[KK] = _mm512_add_ps(acc[KK], _mm512_maskz_loadu_ps(live, g + j));
    __m512 r[K] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int t = 0; t < KK; ++t)
      backward_taps<GX, GW>(acc, r, wf, t, load_window(g, f.HW, j + (t / K - 1) * f.W + t % K - 1), xv, m[t]);
    if (GX) _mm512_mask_storeu_ps(gx + j, live, rows_sum(r));
  }
  for (int t = 0; t <= KK && GW; ++t) _mm512_storeu_ps(part + 16 * t, acc[t]);
}

// the inside vectors (their sums in registers; see Window::load_next)
template <bool GX, bool GW>
void backward_inside(const float* x, const float* g, const FlatPlane& f, const __m512* wf, float* gx, float* part) {
  __m512 acc[KK + 1];
  for (int t = 0; t <= KK && GW; ++t) acc[t] = _mm512_loadu_ps(part + 16 * t);
  Columns cols(f);
  Window wg;
  wg.start(g, f.HW, 16 * f.v_lo, f.W);
  for (int64_t v = f.v_lo; v < f.v_hi; ++v) {
    const int64_t j = 16 * v;
    const __mmask16 edge[K] = {cols.left(), __mmask16(0xFFFF), cols.right()};
    cols.next();
    wg.load_next(g + j, f.W);
    const __m512 xv = GW ? _mm512_loadu_ps(x + j) : _mm512_setzero_ps();
    if (GW) acc[KK] = _mm512_add_ps(acc[KK], wg.v[1][1]);
    __m512 r[K] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
#pragma GCC unroll 9
    for (int t = 0; t < KK; ++t) backward_taps<GX, GW>(acc, r, wf, t, wg.tap(t / K, t % K), xv, edge[t % K]);
    wg.shift();
    if (GX) _mm512_storeu_ps(gx + j, rows_sum(r));
  }
  for (int t = 0; t <= KK && GW; ++t) _mm512_storeu_ps(part + 16 * t, acc[t]);
}

template <bool GX, bool GW>
void backward_plane_impl(const float* x, const float* g, const FlatPlane& f, const float* wflip, float* gx,
                         float* part) {
  __m512 wf[KK];
  for (int t = 0; t < KK; ++t) wf[t] = _mm512_set1_ps(wflip[t]);
  backward_border<GX, GW>(x, g, f, wf, gx, part, 0, f.v_lo);
  if (f.v_hi > f.v_lo) backward_inside<GX, GW>(x, g, f, wf, gx, part);
  backward_border<GX, GW>(x, g, f, wf, gx, part, f.v_hi, f.nvec);
}

void backward_plane(const float* x, const float* g, const FlatPlane& f, const float* wflip, float* gx, float* part) {
  if (gx && part)
    backward_plane_impl<true, true>(x, g, f, wflip, gx, part);
  else if (gx)
    backward_plane_impl<true, false>(x, g, f, wflip, gx, part);
  else if (part)
    backward_plane_impl<false, true>(x, g, f, wflip, gx, part);
}

}  // namespace flat
#endif
}  // namespace

extern const DepthwiseKernels<float> depthwise_f32;
extern const DepthwiseKernels<double> depthwise_f64;
const DepthwiseKernels<float> depthwise_f32 = {&forward_row<float>, &weight_row<float>, &input_row<float>, &copy_rows<float>, &deinterleave<float>,
                                               &forward_row_nhwc<float>,
                                               &forward_rows_nhwc<float>, &forward_pixel_nhwc<float>,
                                               &planes_to_pixels<float>, &pixels_to_planes<float>, &weight_nhwc<float>,
                                               &input_row_nhwc<float>,
#if defined(__AVX512F__)
                                               &flat::forward_plane, &flat::backward_plane};
#else
                                               nullptr, nullptr};
#endif
const DepthwiseKernels<double> depthwise_f64 = {&forward_row<double>, &weight_row<double>, &input_row<double>, &copy_rows<double>, &deinterleave<double>,
                                                &forward_row_nhwc<double>,
                                                &forward_rows_nhwc<double>, &forward_pixel_nhwc<double>,
                                                &planes_to_pixels<double>, &pixels_to_planes<double>, &weight_nhwc<double>,
                                                &input_row_nhwc<double>, nullptr, nullptr};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
