// Per-ISA convolution rows and max-pool passes of conv2d_relu_max_pool (vision/conv_pool_per_isa.h);
// see core/isa_unit.h. Register blocks of CB output channels x VB vectors of columns: each tap loads VB
// vectors of its input phase once for CB channels (a small Cin, as a stem's 3, leaves the channels
// and columns as the only dimensions worth blocking).
#include <cstdint>

#include "core/isa_unit.h"
#include "core/isa_vec.h"
#include "vision/conv_pool_per_isa.h"

namespace nimbleops {
namespace vision {
namespace NIMBLEOPS_ISA_NS {
namespace {

using namespace ::nimbleops::NIMBLEOPS_ISA_NS::vec;

constexpr int kChannelBlock = 4;
constexpr int kVectorBlock = kRegisters >= 32 ? 4 : 2;
constexpr int kMaxKernelWidth = 64;

// CB channels x VB vectors at column c0; off[kw]: the tap's offset in the row's phases
template <int CB, int VB, class T>
inline void micro(const T* w, int64_t taps, const T* bias, const T* const* rows, int64_t count, int64_t KW,
                  const int64_t* off, int64_t c0, T* out, int64_t ld) {
  constexpr int L = register_lanes<T>();
  typedef typename Vec<T, L>::type V;
  V acc[CB][VB];
  for (int c = 0; c < CB; ++c)
    for (int v = 0; v < VB; ++v) acc[c][v] = V{} + (bias ? bias[c] : T(0));
  for (int64_t r = 0; r < count; ++r) {
    const T* row = rows[r] + c0;
    for (int64_t kw = 0; kw < KW; ++kw) {
      V xv[VB];
      for (int v = 0; v < VB; ++v) xv[v] = load<V>(row + off[kw] + v * L);
      const int64_t t = r * KW + kw;
      for (int c = 0; c < CB; ++c) {
        const V wv = V{} + w[c * taps + t];
        for (int v = 0; v < VB; ++v) acc[c][v] += wv * xv[v];
      }
    }
  }
  const V zero = V{};
  for (int c = 0; c < CB; ++c)
    for (int v = 0; v < VB; ++v) store(out + c * ld + c0 + v * L, acc[c][v] < zero ? zero : acc[c][v]);
}

template <int CB, class T>
inline void channel_block(const T* w, int64_t taps, const T* bias, const T* const* rows, int64_t count, int64_t KW,
                          const int64_t* off, int64_t width, T* out, int64_t ld) {
  constexpr int L = register_lanes<T>();
  int64_t c0 = 0;
  for (; c0 + kVectorBlock * L <= width; c0 += kVectorBlock * L)
    micro<CB, kVectorBlock>(w, taps, bias, rows, count, KW, off, c0, out, ld);
  for (; c0 < width; c0 += L) micro<CB, 1>(w, taps, bias, rows, count, KW, off, c0, out, ld);
}

template <class T>
void conv_row(const T* w, const T* bias, int64_t Cout, const T* const* rows, int64_t count, int64_t KW,
              int64_t stride, int64_t pitch, int64_t width, T* out, int64_t ld) {
  int64_t off[kMaxKernelWidth];
  for (int64_t kw = 0; kw < KW; ++kw) off[kw] = (kw % stride) * pitch + kw / stride;
  const int64_t taps = count * KW;
  int64_t co = 0;
  for (; co + kChannelBlock <= Cout; co += kChannelBlock)
    channel_block<kChannelBlock>(w + co * taps, taps, bias ? bias + co : nullptr, rows, count, KW, off, width,
                                 out + co * ld, ld);
  const T* wc = w + co * taps;
  const T* bc = bias ? bias + co : nullptr;
  switch (Cout - co) {
    case 3: channel_block<3>(wc, taps, bc, rows, count, KW, off, width, out + co * ld, ld); break;
    case 2: channel_block<2>(wc, taps, bc, rows, count, KW, off, width, out + co * ld, ld); break;
    case 1: channel_block<1>(wc, taps, bc, rows, count, KW, off, width, out + co * ld, ld); break;
    default: break;
  }
}

template <class T>
void column_max(const T* const* rows, int64_t count, int64_t width, T* out) {
  constexpr int L = register_lanes<T>();
  typedef typename Vec<T, L>::type V;
  for (int64_t c = 0; c < width; c += L) {
    V best = load<V>(rows[0] + c);
    for (int64_t r = 1; r < count; ++r) {
      const V v = load<V>(rows[r] + c);
      best = (v > best) | (v != v) ? v : best;
    }
    store(out + c, best);
  }
}

template <class T>
void window_max(const T* in, int64_t k, int64_t width, T* out) {
  constexpr int L = register_lanes<T>();
  typedef typename Vec<T, L>::type V;
  for (int64_t c = 0; c < width; c += L) {
    V best = load<V>(in + c);
    for (int64_t i = 1; i < k; ++i) {
      const V v = load<V>(in + c + i);
      best = (v > best) | (v != v) ? v : best;
    }
    store(out + c, best);
  }
}

}  // namespace

extern const ConvPoolKernels<float> conv_pool_f32;
extern const ConvPoolKernels<double> conv_pool_f64;
const ConvPoolKernels<float> conv_pool_f32 = {&conv_row<float>, &column_max<float>, &window_max<float>,
                                               register_lanes<float>()};
const ConvPoolKernels<double> conv_pool_f64 = {&conv_row<double>, &column_max<double>, &window_max<double>,
                                                register_lanes<double>()};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace vision
}  // namespace nimbleops
