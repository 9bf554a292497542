// Per-ISA flat 3x3 plane kernels of the depthwise convolution (FlatPlane, vision/depthwise_per_isa.h),
// AVX-512 float32 only; see core/isa_unit.h. The other levels compile this unit empty.
#include <algorithm>

#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/depthwise_isa_common.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {

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

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
