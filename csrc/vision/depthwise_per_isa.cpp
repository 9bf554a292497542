// Per-ISA loops of the depthwise convolution (vision/depthwise_per_isa.h); see core/isa_unit.h.
// Fast paths: 3x3 and 5x5 at stride 1 (dilation 1) and stride 2 (split layout); every other
// shape takes the generic loops, with the same summation order.
#include <algorithm>

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

enum Mode { kGeneric = 0, kStride1 = 1, kSplit2 = 2 };

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
