// CPU convolution + ReLU + max pool (semantics in nimbleops/vision.h, beside ConvPoolViews). Tasks
// are (image, block of pooled rows), in parallel; a task splits the input rows it reads into their
// stride phases, zero-padded, once (the per-ISA rows then read every tap as contiguous vectors),
// computes the convolution rows its pooled rows read (a row shared with the next block is computed
// by both: the same values) and pools them: the window's rows first (a maximum per column), then
// its columns (a maximum per window start, vectorised, taken at the pool's stride). The maximum is
// torch's (greater or nan), so its value does not depend on the visiting order. Every output is
// computed by one task in a fixed order, whatever the thread count.
#include <algorithm>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "vision/conv_pool_api.h"
#include "vision/conv_pool_per_isa.h"

namespace nimbleops {
namespace vision {

NIMBLEOPS_ISA_KERNEL_TABLES(ConvPoolKernels, conv_pool_kernels, conv_pool)

std::vector<int64_t> check_conv_pool(const ConvPoolViews& v) {
  NIMBLEOPS_CHECK(v.x.ndim() == 4, "x: expected [N, C, H, W], got shape ", shape_str(v.x));
  NIMBLEOPS_CHECK(v.x.dtype == DType::float32 || v.x.dtype == DType::float64, "x: expected float32 or float64, got ",
                  dtype_name(v.x.dtype));
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array (conv2d_relu_max_pool has no CUDA kernel)");
  check_contiguous(v.x, "x");
  const int64_t N = v.x.shape[0], Cin = v.x.shape[1], H = v.x.shape[2], W = v.x.shape[3];
  NIMBLEOPS_CHECK(Cin >= 1 && H >= 1 && W >= 1, "x: expected [N, C, H, W] with C, H, W >= 1, got shape ",
                  shape_str(v.x));
  NIMBLEOPS_CHECK(v.weight.ndim() == 4 && v.weight.shape[1] == Cin && v.weight.shape[0] >= 1 &&
                      v.weight.shape[2] >= 1 && v.weight.shape[3] >= 1 && v.weight.shape[3] <= 64,
                  "weight: expected [Cout, ", Cin, ", KH, KW] with KW <= 64, got shape ", shape_str(v.weight));
  check_host_array(v.weight, v.x.dtype, v.weight.numel(), "weight");
  const int64_t Cout = v.weight.shape[0], KH = v.weight.shape[2], KW = v.weight.shape[3];
  if (v.bias) {
    check_host_array(*v.bias, v.x.dtype, Cout, "bias");
    NIMBLEOPS_CHECK(v.bias->ndim() == 1, "bias: expected [", Cout, "], got shape ", shape_str(*v.bias));
  }
  NIMBLEOPS_CHECK(v.stride >= 1 && v.stride <= 16, "stride: expected an integer in [1, 16], got ", v.stride);
  NIMBLEOPS_CHECK(v.padding >= 0 && v.padding < 1 << 20, "padding: expected an integer in [0, 2**20), got ",
                  v.padding);
  NIMBLEOPS_CHECK(v.pool_kernel_size >= 1 && v.pool_kernel_size < 1 << 20,
                  "pool_kernel_size: expected an integer in [1, 2**20), got ", v.pool_kernel_size);
  NIMBLEOPS_CHECK(v.pool_stride >= 1 && v.pool_stride < 1 << 20,
                  "pool_stride: expected an integer in [1, 2**20), got ", v.pool_stride);
  NIMBLEOPS_CHECK(v.pool_padding >= 0 && 2 * v.pool_padding <= v.pool_kernel_size,
                  "pool_padding: expected an integer in [0, pool_kernel_size / 2] = [0, ", v.pool_kernel_size / 2,
                  "], got ", v.pool_padding);
  NIMBLEOPS_CHECK(H + 2 * v.padding >= KH && W + 2 * v.padding >= KW, "weight: the ", KH, "x", KW,
                  " kernel is larger than the padded ", H, "x", W, " input (padding ", v.padding, ")");
  const int64_t OH = (H + 2 * v.padding - KH) / v.stride + 1, OW = (W + 2 * v.padding - KW) / v.stride + 1;
  NIMBLEOPS_CHECK(OH + 2 * v.pool_padding >= v.pool_kernel_size && OW + 2 * v.pool_padding >= v.pool_kernel_size,
                  "pool_kernel_size: the ", v.pool_kernel_size, "x", v.pool_kernel_size,
                  " window is larger than the padded ", OH, "x", OW, " convolution output (pool_padding ",
                  v.pool_padding, ")");
  const int64_t PH = (OH + 2 * v.pool_padding - v.pool_kernel_size) / v.pool_stride + 1;
  const int64_t PW = (OW + 2 * v.pool_padding - v.pool_kernel_size) / v.pool_stride + 1;
  return {N, Cout, PH, PW};
}

namespace cpu {
namespace {

constexpr int64_t kPooledRows = 8;  // pooled rows per task

template <class T>
void run(const ConvPoolViews& v, const std::vector<int64_t>& shape, T* out) {
  const auto& k = conv_pool_kernels<T>();
  const T* x = v.x.ptr<T>();
  const T* w = v.weight.ptr<T>();
  const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
  const int64_t N = shape[0], Cout = shape[1], PH = shape[2], PW = shape[3];
  const int64_t Cin = v.x.shape[1], H = v.x.shape[2], W = v.x.shape[3], KH = v.weight.shape[2], KW = v.weight.shape[3];
  const int64_t s = v.stride, pad = v.padding, pk = v.pool_kernel_size, ps = v.pool_stride, pp = v.pool_padding;
  const int64_t OH = (H + 2 * pad - KH) / s + 1, OW = (W + 2 * pad - KW) / s + 1;
  const int64_t L = k.lanes;
  const int64_t width = (OW + L - 1) / L * L;          // conv row length, whole vectors
  const int64_t pitch = width + (KW - 1) / s + 1;      // a phase's length
  const int64_t starts = ((PW - 1) * ps + 1 + L - 1) / L * L;  // pool windows computed, whole vectors
  // a conv row's column maxima with pp columns of -inf before and -inf after (the pool's padding)
  const int64_t padded = std::max(pp + width, starts + pk - 1) + L;
  const int64_t blocks = (PH + kPooledRows - 1) / kPooledRows;
  parallel_for(N * blocks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> phases, conv, colmax(static_cast<size_t>(padded), -std::numeric_limits<T>::infinity());
    std::vector<T> windows(static_cast<size_t>(starts)), zeros(static_cast<size_t>(s * pitch), T(0));
    std::vector<const T*> rows(static_cast<size_t>(Cin * KH)), pool_rows(static_cast<size_t>(pk));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / blocks, ph0 = (t % blocks) * kPooledRows, ph1 = std::min(PH, ph0 + kPooledRows);
      // the convolution rows the pooled rows [ph0, ph1) read, and the input rows those read
      const int64_t oh0 = std::max<int64_t>(0, ph0 * ps - pp), oh1 = std::min(OH, (ph1 - 1) * ps - pp + pk);
      const int64_t ih0 = std::max<int64_t>(0, oh0 * s - pad), ih1 = std::min(H, (oh1 - 1) * s - pad + KH);
      // each input row split into its s phases once, zero-padded
      phases.assign(size_t(std::max<int64_t>(0, ih1 - ih0) * Cin * s * pitch), T(0));
      for (int64_t ih = ih0; ih < ih1; ++ih)
        for (int64_t ci = 0; ci < Cin; ++ci) {
          const T* src = x + ((n * Cin + ci) * H + ih) * W;
          T* dst = phases.data() + ((ih - ih0) * Cin + ci) * s * pitch;
          for (int64_t q = 0; q < s; ++q) {  // element j of phase q: input column q + s j - pad
            const int64_t j0 = (std::max<int64_t>(0, pad - q) + s - 1) / s;
            const int64_t j1 = std::min<int64_t>(pitch, (W - 1 + pad - q) / s + 1);
            for (int64_t j = j0; j < j1; ++j) dst[q * pitch + j] = src[q + s * j - pad];
          }
        }
      conv.resize(size_t((oh1 - oh0) * Cout * width));
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        for (int64_t ci = 0; ci < Cin; ++ci)
          for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t ih = oh * s - pad + kh;
            rows[size_t(ci * KH + kh)] =
                (ih >= 0 && ih < H) ? phases.data() + ((ih - ih0) * Cin + ci) * s * pitch : zeros.data();
          }
        k.conv_row(w, bias, Cout, rows.data(), Cin * KH, KW, s, pitch, width, conv.data() + (oh - oh0) * Cout * width,
                   width);
      }
      // the pool: the window's rows (a maximum per column), then its columns (a maximum per window
      // start, the pooled columns taken at the strides)
      for (int64_t co = 0; co < Cout; ++co)
        for (int64_t ph = ph0; ph < ph1; ++ph) {
          const int64_t r0 = std::max<int64_t>(0, ph * ps - pp), r1 = std::min(OH, ph * ps - pp + pk);
          for (int64_t r = r0; r < r1; ++r) pool_rows[size_t(r - r0)] = conv.data() + ((r - oh0) * Cout + co) * width;
          k.column_max(pool_rows.data(), r1 - r0, width, colmax.data() + pp);
          std::fill(colmax.begin() + pp + OW, colmax.end(), -std::numeric_limits<T>::infinity());
          k.window_max(colmax.data(), pk, starts, windows.data());
          T* o = out + ((n * Cout + co) * PH + ph) * PW;
          for (int64_t pw = 0; pw < PW; ++pw) o[pw] = windows[size_t(pw * ps)];
        }
    }
  });
}

}  // namespace

void conv2d_relu_max_pool(const ConvPoolViews& v, const View& out) {
  const std::vector<int64_t> shape = check_conv_pool(v);
  NIMBLEOPS_CHECK(out.device < 0, "out: expected a CPU array");
  check_contiguous(out, "out");
  check_dtype(out, v.x.dtype, "out");
  NIMBLEOPS_CHECK(out.shape == shape, "out: expected shape [", shape[0], ", ", shape[1], ", ", shape[2], ", ",
                  shape[3], "], got ", shape_str(out));
  check_disjoint({{"out", &out}}, {{"x", &v.x}, {"weight", &v.weight}, {"bias", view_or_null(v.bias)}});
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] { run<scalar_t>(v, shape, out.ptr<scalar_t>()); });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
