// CPU pointwise convolution: a GEMM per image and group, Out[Cout_g x HW] = W_g . X_g, computed in
// strips of 32 pixels (the per-ISA micro-kernel of pointwise_per_isa.cpp keeps 6 x 32 outputs in
// registers over the whole K loop), the images' pixels laid end to end, in parallel over strips. Bias, ReLU and the output
// channel shuffle are applied as the strip is stored. Backward: the masked, unshuffled gradient
// G' (grad_out itself where there is no ReLU mask or shuffle to undo and grad_weight is not the
// batch-wide GEMM below; else a copy [Cout, N, HW] in which each channel's gradient over the whole
// batch is one row); grad_input = W_g^T . G'_g by the same strips. grad_weight, each weight one sum
// over the batch in a fixed order on one thread (so the result never depends on the thread count):
// with many input channels or on small images G'_g [Cout_g, N*HW] . X_g^T [N*HW, Cin_g] by the same
// micro-kernel, X transposed once, in parallel over (group, column strip of input channels, block
// of rows); elsewhere 4 x 4 tiles of dot products (nt_accumulate) in parallel.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "vision/pointwise_api.h"
#include "vision/pointwise_per_isa.h"

namespace nimbleops {
namespace vision {

NIMBLEOPS_ISA_KERNEL_TABLES(PointwiseKernels, pointwise_kernels, pointwise)

void check_pointwise(PointwiseViews& v) {
  NIMBLEOPS_CHECK(v.x.ndim() == 4, "x: expected [N, C, H, W], got shape ", shape_str(v.x));
  NIMBLEOPS_CHECK(v.x.dtype == DType::float32 || v.x.dtype == DType::float64, "x: expected float32 or float64, got ",
                  dtype_name(v.x.dtype));
  check_contiguous(v.x, "x");
  PointwiseShape s;
  s.N = v.x.shape[0];
  s.Cin = v.x.shape[1];
  s.HW = v.x.shape[2] * v.x.shape[3];
  NIMBLEOPS_CHECK(v.groups >= 1 && s.Cin % v.groups == 0, "groups: expected a positive divisor of the ", s.Cin,
                  " input channels, got ", v.groups);
  s.Cin_g = s.Cin / v.groups;
  NIMBLEOPS_CHECK(v.weight.ndim() == 2 && v.weight.shape[1] == s.Cin_g && v.weight.shape[0] % v.groups == 0,
                  "weight: expected [Cout, Cin/groups] = [Cout, ", s.Cin_g, "] with Cout divisible by ", v.groups,
                  ", got shape ", shape_str(v.weight));
  check_contiguous(v.weight, "weight");
  check_dtype(v.weight, v.x.dtype, "weight");
  check_same_device(v.weight, v.x, "weight", "x");
  s.Cout = v.weight.shape[0];
  s.Cout_g = s.Cout / v.groups;
  NIMBLEOPS_CHECK(v.shuffle_groups == 0 || (v.shuffle_groups >= 1 && s.Cout % v.shuffle_groups == 0),
                  "shuffle_groups: expected a divisor of the ", s.Cout, " output channels, got ", v.shuffle_groups);
  if (v.bias) {
    check_contiguous(*v.bias, "bias");
    check_dtype(*v.bias, v.x.dtype, "bias");
    check_numel(*v.bias, s.Cout, "bias");
    check_same_device(*v.bias, v.x, "bias", "x");
  }
  v.shape = s;
  v.checked = true;
}

namespace cpu {
namespace {

// grad_weight is a GEMM from this many input channels per group, or on images of at most
// kGemmWeightPixels pixels; elsewhere 4 x 4 tiles of dot products (their dot products, one per
// image, are too short on small images, and the GEMM's transposed X costs more on large ones)
constexpr int64_t kGemmWeightChannels = 256;
constexpr int64_t kGemmWeightPixels = 256;

// C[i] = act(bias_i + A_i . B) over the columns [p0, p0 + width) of the HW columns, for M rows; B
// rows b0 + k * pitch (run) or b0[k] (run_rows), C rows c0[i] (a pointer per row: the shuffle); a
// tail strip goes through zero-padded scratch, computing only the column passes its width reaches
// (one of two on AVX2 for up to 16 pixels).
template <class T>
struct Strips {
  std::vector<T> bpad, cpad, pack;
  std::vector<const T*> brow, bstart;
  std::vector<T*> crow;

  void run(const T* A, int64_t lda, int64_t M, int64_t K, const T* b0, int64_t HW, int64_t pitch, T* const* c0,
           int64_t p0, const T* bias, bool relu) {
    bstart.resize(size_t(K));
    for (int64_t kk = 0; kk < K; ++kk) bstart[size_t(kk)] = b0 + kk * pitch;
    run_rows(A, lda, M, K, bstart.data(), HW, c0, p0, bias, relu);
  }

  // the same with B's K rows starting at b0[k]
  void run_rows(const T* A, int64_t lda, int64_t M, int64_t K, const T* const* b0, int64_t HW, T* const* c0,
                int64_t p0, const T* bias, bool relu) {
    const auto& k = pointwise_kernels<T>();
    const int64_t width = std::min<int64_t>(kStrip, HW - p0);
    brow.resize(size_t(K));
    crow.resize(size_t(M));
    pack.resize(size_t(K * kStrip));
    if (width == kStrip) {
      for (int64_t kk = 0; kk < K; ++kk) brow[size_t(kk)] = b0[kk] + p0;
      for (int64_t i = 0; i < M; ++i) crow[size_t(i)] = c0[i] + p0;
      k.gemm_strip(A, lda, M, K, brow.data(), crow.data(), bias, relu, pack.data(), kStrip);
      return;
    }
    bpad.assign(size_t(K * kStrip), T(0));
    cpad.resize(size_t(M * kStrip));
    for (int64_t kk = 0; kk < K; ++kk) {
      std::memcpy(bpad.data() + kk * kStrip, b0[kk] + p0, sizeof(T) * size_t(width));
      brow[size_t(kk)] = bpad.data() + kk * kStrip;
    }
    for (int64_t i = 0; i < M; ++i) crow[size_t(i)] = cpad.data() + i * kStrip;
    k.gemm_strip(A, lda, M, K, brow.data(), crow.data(), bias, relu, pack.data(), width);  // its passes only
    for (int64_t i = 0; i < M; ++i) std::memcpy(c0[i] + p0, cpad.data() + i * kStrip, sizeof(T) * size_t(width));
  }

  // A strip of width columns that crosses images: columns [q0, q0 + width) of the images' columns
  // laid end to end (column q = pixel q % HW of image q / HW), row k of B of image n at b(n, k) and
  // row i of C at c(n, i); gathered into zero-padded scratch and scattered back
  template <class BRow, class CRow>
  void run_across(const T* A, int64_t lda, int64_t M, int64_t K, int64_t width, int64_t q0, int64_t HW, BRow b,
                  CRow c, const T* bias, bool relu) {
    const auto& k = pointwise_kernels<T>();
    brow.resize(size_t(K));
    crow.resize(size_t(M));
    pack.resize(size_t(K * kStrip));
    bpad.assign(size_t(K * kStrip), T(0));
    cpad.resize(size_t(M * kStrip));
    auto segments = [&](auto&& f) {  // f(image, first pixel, offset in the strip, length)
      for (int64_t q = q0; q < q0 + width;) {
        const int64_t n = q / HW, p = q % HW, len = std::min(HW - p, q0 + width - q);
        f(n, p, q - q0, len);
        q += len;
      }
    };
    for (int64_t kk = 0; kk < K; ++kk) {
      T* dst = bpad.data() + kk * kStrip;
      segments([&](int64_t n, int64_t p, int64_t at, int64_t len) {
        std::memcpy(dst + at, b(n, kk) + p, sizeof(T) * size_t(len));
      });
      brow[size_t(kk)] = dst;
    }
    for (int64_t i = 0; i < M; ++i) crow[size_t(i)] = cpad.data() + i * kStrip;
    k.gemm_strip(A, lda, M, K, brow.data(), crow.data(), bias, relu, pack.data(), width);
    for (int64_t i = 0; i < M; ++i) {
      const T* src = cpad.data() + i * kStrip;
      segments([&](int64_t n, int64_t p, int64_t at, int64_t len) {
        std::memcpy(c(n, i) + p, src + at, sizeof(T) * size_t(len));
      });
    }
  }
};

// dst[p] = g[p] where the ReLU's output o[p] was positive, else 0: a select, not a branch (the sign
// of a ReLU's output is as good as random to a branch predictor)
template <class T>
void relu_masked_copy(const T* __restrict o, const T* __restrict g, T* __restrict dst, int64_t len) {
  for (int64_t p = 0; p < len; ++p) {
    const T gv = g[p], ov = o[p];  // both read unconditionally, so that the select vectorises
    dst[p] = ov > T(0) ? gv : T(0);
  }
}

// lanes[p % kPartLanes] += row[p] for p < len, in p order: one lane per SIMD element, so the loop
// vectorises (an index computed per element would not)
template <class T>
void add_to_lanes(const T* __restrict row, int64_t len, T* __restrict lanes) {
  T acc[kPartLanes];
  for (int l = 0; l < kPartLanes; ++l) acc[l] = lanes[l];
  int64_t p = 0;
  for (; p + kPartLanes <= len; p += kPartLanes)
    for (int l = 0; l < kPartLanes; ++l) acc[l] += row[p + l];
  for (int l = 0; p < len; ++p, ++l) acc[l] += row[p];
  for (int l = 0; l < kPartLanes; ++l) lanes[l] = acc[l];
}

// Calls of at most kGemvColumns output columns (N * HW) go column by column (gemv_column), in blocks
// of kGemvRows rows: a strip's pass would compute a whole pass of columns for them.
constexpr int64_t kGemvColumns = 4;
constexpr int64_t kGemvRows = 64;

// C_{n,g} = act(bias_g + A_g . B_{n,g}) for every image n and group g, by strips of kStrip columns
// of the images' pixels laid end to end (so that small images do not leave most of their last strip
// padding; a strip that crosses images is gathered and scattered), in parallel over the strips:
// A_g = A + g * M * K ([M, K], row-major), row k of B_{n,g} at b(n, g, k) and row i of C_{n,g} at
// c(n, g, i) (HW elements each), bias_g = bias + g * M. Every output column is the same sum
// whichever strip holds it.
template <class T, class BRow, class CRow>
void grouped_gemm(int64_t N, int64_t HW, int64_t groups, int64_t M, int64_t K, const T* A, BRow b, CRow c,
                  const T* bias, bool relu) {
  const int64_t Q = N * HW, strips = (Q + kStrip - 1) / kStrip;
  if (Q <= kGemvColumns) {
    // too few columns for a pass (a 1x1 image: a global context's or a squeeze-excitation's 1x1):
    // column by column, in parallel over blocks of rows
    const int64_t blocks = (M + kGemvRows - 1) / kGemvRows;
    parallel_for(groups * blocks, 1, [&](int64_t t0, int64_t t1) {
      const auto& k = pointwise_kernels<T>();
      std::vector<T> x(static_cast<size_t>(K));
      std::vector<T*> rows(static_cast<size_t>(kGemvRows));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t g = t / blocks, m0 = (t % blocks) * kGemvRows, m = std::min(M - m0, kGemvRows);
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t n = q / HW, p = q % HW;
          for (int64_t kk = 0; kk < K; ++kk) x[size_t(kk)] = b(n, g, kk)[p];
          for (int64_t i = 0; i < m; ++i) rows[size_t(i)] = c(n, g, m0 + i);
          k.gemv_column(A + (g * M + m0) * K, K, m, K, x.data(), rows.data(), p, bias ? bias + g * M + m0 : nullptr,
                        relu);
        }
      }
    });
    return;
  }
  parallel_for(strips, 1, [&](int64_t t0, int64_t t1) {
    Strips<T> st;
    std::vector<const T*> in(static_cast<size_t>(K));
    std::vector<T*> rows(static_cast<size_t>(M));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t q0 = t * kStrip, width = std::min<int64_t>(kStrip, Q - q0), n = q0 / HW, p0 = q0 % HW;
      for (int64_t g = 0; g < groups; ++g) {
        const T* Ag = A + g * M * K;
        const T* bg = bias ? bias + g * M : nullptr;
        if (p0 + width <= HW) {  // inside image n
          for (int64_t k = 0; k < K; ++k) in[size_t(k)] = b(n, g, k);
          for (int64_t i = 0; i < M; ++i) rows[size_t(i)] = c(n, g, i);
          st.run_rows(Ag, K, M, K, in.data(), HW, rows.data(), p0, bg, relu);
        } else {
          st.run_across(Ag, K, M, K, width, q0, HW, [&](int64_t m, int64_t k) { return b(m, g, k); },
                        [&](int64_t m, int64_t i) { return c(m, g, i); }, bg, relu);
        }
      }
    }
  });
}

}  // namespace

void pointwise_forward(const PointwiseViews& v, const View& out) {
  const PointwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array for the CPU kernels");
  check_contiguous(out, "out");
  check_dtype(out, v.x.dtype, "out");
  check_numel(out, s.N * s.Cout * s.HW, "out");
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const T* x = v.x.ptr<T>();
    const T* w = v.weight.ptr<T>();
    const T* bias = v.bias ? v.bias->ptr<T>() : nullptr;
    T* o = out.ptr<T>();
    auto in = [&](int64_t n, int64_t g, int64_t k) { return x + (n * s.Cin + g * s.Cin_g + k) * s.HW; };
    auto out_row = [&](int64_t n, int64_t g, int64_t i) {  // the output shuffle: row co at its position
      return o + (n * s.Cout + shuffled_position(g * s.Cout_g + i, s.Cout, v.shuffle_groups)) * s.HW;
    };
    grouped_gemm(s.N, s.HW, v.groups, s.Cout_g, s.Cin_g, w, in, out_row, bias, v.relu);
  });
}

void pointwise_backward(const PointwiseViews& v, const View& grad_out, const std::optional<View>& out,
                        const std::optional<View>& grad_x, const std::optional<View>& grad_w,
                        const std::optional<View>& grad_b) {
  const PointwiseShape& s = checked_shape(v);
  NIMBLEOPS_CHECK(v.x.device < 0, "x: expected a CPU array for the CPU kernels");
  auto check_out = [&](const View& t, int64_t n, const char* name) {
    check_contiguous(t, name);
    check_dtype(t, v.x.dtype, name);
    check_numel(t, n, name);
  };
  check_out(grad_out, s.N * s.Cout * s.HW, "grad_output");
  NIMBLEOPS_CHECK(!v.relu || out, "internal: the relu backward needs the forward output");
  if (out) check_out(*out, s.N * s.Cout * s.HW, "out");
  if (grad_x) check_out(*grad_x, s.N * s.Cin * s.HW, "grad_input");
  if (grad_w) check_out(*grad_w, s.Cout * s.Cin_g, "grad_weight");
  if (grad_b) check_out(*grad_b, s.Cout, "grad_bias");
  NIMBLEOPS_DISPATCH_FLOATING(v.x.dtype, "x", [&] {
    using T = scalar_t;
    const auto& k = pointwise_kernels<T>();
    const T* x = v.x.ptr<T>();
    const T* w = v.weight.ptr<T>();
    const T* g = grad_out.ptr<T>();
    const T* o = out ? out->ptr<T>() : nullptr;
    // G': the gradient in unshuffled channel order, zero where the ReLU was off; channel co of image
    // n at gp + co * chan_stride + n * img_stride. Without a ReLU or a shuffle it is grad_out itself
    // ([N, Cout, HW]); otherwise, or where grad_weight is a GEMM over the whole batch, a copy
    // [Cout, N, HW] in which each channel's gradient over the batch is one row (uninitialised: every
    // element is written below, and zero-filling it first costs a pass).
    const bool gemm_weight = grad_w && (s.Cin_g >= kGemmWeightChannels || s.HW <= kGemmWeightPixels);
    std::unique_ptr<T[]> gp_buffer;
    const T* gp = g;
    int64_t chan_stride = s.HW, img_stride = s.Cout * s.HW;
    if (v.relu || v.shuffle_groups > 1 || gemm_weight) {
      gp_buffer.reset(new T[size_t(s.N * s.Cout * s.HW)]);
      T* const dst0 = gp_buffer.get();
      parallel_for(s.N * s.Cout, 8, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t n = r / s.Cout, co = r % s.Cout;
          const int64_t src = (n * s.Cout + shuffled_position(co, s.Cout, v.shuffle_groups)) * s.HW;
          T* dst = dst0 + co * s.N * s.HW + n * s.HW;
          if (v.relu)
            relu_masked_copy(o + src, g + src, dst, s.HW);
          else
            std::memcpy(dst, g + src, sizeof(T) * size_t(s.HW));
        }
      });
      gp = dst0;
      chan_stride = s.N * s.HW;
      img_stride = s.HW;
    }
    if (grad_x) {
      // W_g^T [Cin_g, Cout_g], in tiles of 16 x 16 (a row-by-row transpose of a large weight misses
      // the cache on every write), in parallel over (group, block of 16 rows)
      std::vector<T> wt(size_t(s.Cout * s.Cin_g));
      constexpr int64_t kTileT = 16;
      const int64_t row_blocks = (s.Cin_g + kTileT - 1) / kTileT;
      parallel_for(v.groups * row_blocks, 4, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t gr = t / row_blocks, j0 = (t % row_blocks) * kTileT, j1 = std::min(s.Cin_g, j0 + kTileT);
          const T* wg = w + gr * s.Cout_g * s.Cin_g;
          T* tg = wt.data() + gr * s.Cout_g * s.Cin_g;
          for (int64_t i0 = 0; i0 < s.Cout_g; i0 += kTileT)
            for (int64_t j = j0; j < j1; ++j)
              for (int64_t i = i0; i < std::min(s.Cout_g, i0 + kTileT); ++i) tg[j * s.Cout_g + i] = wg[i * s.Cin_g + j];
        }
      });
      T* gx = grad_x->ptr<T>();
      auto grad_rows = [&](int64_t n, int64_t g, int64_t k) {
        return gp + (g * s.Cout_g + k) * chan_stride + n * img_stride;
      };
      auto gx_row = [&](int64_t n, int64_t g, int64_t i) { return gx + (n * s.Cin + g * s.Cin_g + i) * s.HW; };
      grouped_gemm(s.N, s.HW, v.groups, s.Cin_g, s.Cout_g, wt.data(), grad_rows, gx_row,
                   static_cast<const T*>(nullptr), false);
    }
    if (gemm_weight) {
      const int64_t gp_pitch = chan_stride;  // = N * HW: one row per channel over the batch
      // X^T [N*HW, Cin]: row q = n * HW + p holds pixel p of image n, every channel
      std::unique_ptr<T[]> xt_buffer(new T[size_t(s.N * s.HW * s.Cin)]);  // every element written below
      T* const xt = xt_buffer.get();
      constexpr int64_t kPixels = 64;
      const int64_t pixel_blocks = (s.HW + kPixels - 1) / kPixels;
      parallel_for(s.N * pixel_blocks, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t n = t / pixel_blocks, p0 = (t % pixel_blocks) * kPixels, p1 = std::min(s.HW, p0 + kPixels);
          for (int64_t c = 0; c < s.Cin; ++c) {
            const T* src = x + (n * s.Cin + c) * s.HW;
            T* dst = xt + n * s.HW * s.Cin + c;
            for (int64_t p = p0; p < p1; ++p) dst[p * s.Cin] = src[p];
          }
        }
      });
      // grad_weight_g [Cout_g, Cin_g] = G'_g [Cout_g, N*HW] . X^T_g [N*HW, Cin_g]: columns in strips
      // of kStrip input channels, rows in blocks of `rows_per_block` output channels. A block packs
      // its strip of X^T (N*HW rows: an L2-sized panel) before its rows read it, so the rows go in
      // as few blocks as keep two tasks a thread; a block a row of micro-kernels apart changes no
      // sum (each weight is one micro-kernel's sum over k in order), so neither does the split.
      T* gw = grad_w->ptr<T>();
      const int64_t strips = (s.Cin_g + kStrip - 1) / kStrip, strip_tasks = v.groups * strips;
      constexpr int64_t kRowUnit = 12;  // a multiple of every level's micro-kernel rows
      const int64_t wanted = (2 * get_num_threads() + strip_tasks - 1) / strip_tasks;
      const int64_t row_blocks = std::max<int64_t>(1, std::min(wanted, (s.Cout_g + kRowUnit - 1) / kRowUnit));
      const int64_t rows_per_block = ((s.Cout_g + row_blocks - 1) / row_blocks + kRowUnit - 1) / kRowUnit * kRowUnit;
      const int64_t blocks = (s.Cout_g + rows_per_block - 1) / rows_per_block;
      parallel_for(strip_tasks * blocks, 1, [&](int64_t t0, int64_t t1) {
        Strips<T> st;
        std::vector<T*> rows(static_cast<size_t>(rows_per_block), nullptr);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t gr = t / (strips * blocks), p0 = ((t / blocks) % strips) * kStrip;
          const int64_t i0 = (t % blocks) * rows_per_block, M = std::min(rows_per_block, s.Cout_g - i0);
          for (int64_t i = 0; i < M; ++i) rows[size_t(i)] = gw + (gr * s.Cout_g + i0 + i) * s.Cin_g;
          st.run(gp + (gr * s.Cout_g + i0) * gp_pitch, gp_pitch, M, gp_pitch, xt + gr * s.Cin_g,
                 s.Cin_g, s.Cin, rows.data(), p0, static_cast<const T*>(nullptr), false);
        }
      });
    }
    if (grad_w && !gemm_weight) {
      constexpr int64_t kTile = 4;
      const int64_t ti = (s.Cout_g + kTile - 1) / kTile, tj = (s.Cin_g + kTile - 1) / kTile;
      T* gw = grad_w->ptr<T>();
      parallel_for(v.groups * ti * tj, 1, [&](int64_t t0, int64_t t1) {
        std::vector<T> part(size_t(kTile * kTile * kPartLanes));
        const T* arow[kTile];
        const T* brow[kTile];
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t gr = t / (ti * tj), i0 = ((t / tj) % ti) * kTile, j0 = (t % tj) * kTile;
          const int64_t M = std::min(kTile, s.Cout_g - i0), Nn = std::min(kTile, s.Cin_g - j0);
          std::fill(part.begin(), part.end(), T(0));
          for (int64_t n = 0; n < s.N; ++n) {
            for (int64_t i = 0; i < M; ++i) arow[i] = gp + (gr * s.Cout_g + i0 + i) * chan_stride + n * img_stride;
            for (int64_t j = 0; j < Nn; ++j) brow[j] = x + (n * s.Cin + gr * s.Cin_g + j0 + j) * s.HW;
            k.nt_accumulate(arow, brow, M, Nn, s.HW, part.data());
          }
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < Nn; ++j) {
              T sum = T(0);
              for (int l = 0; l < kPartLanes; ++l) sum += part[size_t((i * Nn + j) * kPartLanes + l)];
              gw[(gr * s.Cout_g + i0 + i) * s.Cin_g + j0 + j] = sum;
            }
        }
      });
    }
    if (grad_b) {
      T* gb = grad_b->ptr<T>();
      parallel_for(s.Cout, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t co = c0; co < c1; ++co) {
          T lanes[kPartLanes] = {};
          // the channel's gradient over the batch, image by image in order
          for (int64_t n = 0; n < s.N; ++n) add_to_lanes(gp + co * chan_stride + n * img_stride, s.HW, lanes);
          T sum = T(0);
          for (int l = 0; l < kPartLanes; ++l) sum += lanes[l];
          gb[co] = sum;
        }
      });
    }
  });
}

template <class T>
void pointwise_gemm_rows(int64_t N, int64_t HW, int64_t M, int64_t K, const T* weight, const T* bias, bool relu,
                         const T* const* in_rows, T* const* out_rows) {
  grouped_gemm(N, HW, 1, M, K, weight, [&](int64_t n, int64_t, int64_t k) { return in_rows[n * K + k]; },
               [&](int64_t n, int64_t, int64_t i) { return out_rows[n * M + i]; }, bias, relu);
}

template void pointwise_gemm_rows<float>(int64_t, int64_t, int64_t, int64_t, const float*, const float*, bool,
                                         const float* const*, float* const*);
template void pointwise_gemm_rows<double>(int64_t, int64_t, int64_t, int64_t, const double*, const double*, bool,
                                          const double* const*, double* const*);

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
