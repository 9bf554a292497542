// CPU ShuffleNetV2 stage (inference; semantics in nimbleops/vision.h, beside ShuffleUnitViews).
//
// The stage's channels live in one buffer of planes [N, C, H, W] whose logical order is a table,
// slot[c] = the plane holding channel c: a channel shuffle and the split that follows it are
// then a new table, not a pass over the data. A stride-1 unit reads its second half's planes in
// place (the pointwise GEMM takes a pointer per input row), and its branch writes its result into
// those same planes once the first pointwise has consumed them: slot'[2i] = slot[i] (x1 passes
// through untouched), slot'[2i + 1] = slot[C/2 + i] (y). A stride-2 unit reads a contiguous input
// (the stage's input, or the planes gathered into order) and writes y1 and y2 into a new buffer.
// Only the last result is gathered into `out`. Each convolution is the kernel of the unfused op
// (pointwise_gemm_rows is the pointwise forward's GEMM; the depthwise forward itself), so every
// element is computed with the same arithmetic, in parallel inside each kernel.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/dispatch.h"
#include "core/parallel.h"
#include "vision/depthwise_api.h"
#include "vision/pointwise_api.h"
#include "vision/shuffle_stage_api.h"

namespace nimbleops {
namespace vision {
namespace {

void check_bias(const std::optional<View>& b, int64_t n, DType dtype, const std::string& name) {
  if (!b) return;
  check_host_array(*b, dtype, n, name.c_str());
  NIMBLEOPS_CHECK(b->ndim() == 1, name, ": expected [", n, "], got shape ", shape_str(*b));
}

// A 1x1 convolution's weight [Cout, Cin] or [Cout, Cin, 1, 1] and bias; returns Cout.
int64_t check_pw(const View& w, const std::optional<View>& b, int64_t cin, DType dtype, const std::string& unit,
                 const char* field) {
  const std::string name = unit + field;
  NIMBLEOPS_CHECK((w.ndim() == 2 || (w.ndim() == 4 && w.shape[2] == 1 && w.shape[3] == 1)) && w.shape[1] == cin &&
                      w.shape[0] >= 1,
                  name, "_weight: expected [Cout, ", cin, "] or [Cout, ", cin, ", 1, 1], got shape ", shape_str(w));
  check_host_array(w, dtype, w.numel(), (name + "_weight").c_str());
  check_bias(b, w.shape[0], dtype, name + "_bias");
  return w.shape[0];
}

// A depthwise convolution's weight [C, 1, KH, KW] (odd sizes) and bias.
void check_dw(const View& w, const std::optional<View>& b, int64_t C, DType dtype, const std::string& unit,
              const char* field) {
  const std::string name = unit + field;
  NIMBLEOPS_CHECK(w.ndim() == 4 && w.shape[0] == C && w.shape[1] == 1 && w.shape[2] % 2 == 1 && w.shape[3] % 2 == 1,
                  name, "_weight: expected [", C, ", 1, KH, KW] with odd KH and KW, got shape ", shape_str(w));
  check_host_array(w, dtype, w.numel(), (name + "_weight").c_str());
  check_bias(b, C, dtype, name + "_bias");
}

// (H + 2 (K / 2) - K) / stride + 1 for odd K
int64_t strided(int64_t H, int64_t stride) { return (H - 1) / stride + 1; }

template <class T>
class Stage {
 public:
  Stage(const View& x) : N_(x.shape[0]), C_(x.shape[1]), H_(x.shape[2]), W_(x.shape[3]), x_(x.ptr<T>()) {}

  void run(const std::vector<ShuffleUnitViews>& units, const View& out) {
    for (const ShuffleUnitViews& u : units) u.stride == 2 ? downsample(u) : unit(u);
    gather(out.ptr<T>());
  }

 private:
  // the plane of channel c of image n: in the stage's buffer (after the first unit), else in x
  T* own_plane(int64_t n, int64_t c) const { return planes_.get() + (n * C_ + slot_[size_t(c)]) * H_ * W_; }
  const T* plane(int64_t n, int64_t c) const { return planes_ ? own_plane(n, c) : x_ + (n * C_ + c) * H_ * W_; }

  // the channels in logical order, [N, C, H, W] contiguous at dst
  void gather(T* dst) const {
    const int64_t HW = H_ * W_, C = C_;
    parallel_for(N_ * C, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(dst + r * HW, plane(r / C, r % C), sizeof(T) * size_t(HW));
    });
  }

  // out rows (n, i) at out[n * M + i] = relu(bias + W . in rows), in rows (n, k) at in[n * K + k]
  static void pointwise(int64_t N, int64_t HW, const View& w, const std::optional<View>& b, const T* const* in,
                        T* const* out) {
    const int64_t M = w.shape[0], K = w.shape[1];
    cpu::pointwise_gemm_rows<T>(N, HW, M, K, w.ptr<T>(), b ? b->ptr<T>() : nullptr, true, in, out);
  }

  // out [N, C, OH, OW] = dw(in [N, C, H, W]) at the stride
  void depthwise(const T* in, int64_t C, int64_t H, int64_t W, int64_t stride, const View& w,
                 const std::optional<View>& b, T* out) const {
    DepthwiseViews v;
    v.x = contiguous_view(in, {N_, C, H, W});
    v.weight = w;
    v.bias = b;
    v.KH = w.shape[2];
    v.KW = w.shape[3];
    v.sh = v.sw = stride;
    v.pad_h = v.KH / 2;
    v.pad_w = v.KW / 2;
    check_depthwise(v);
    cpu::depthwise_forward(v, contiguous_view(out, {N_, C, strided(H, stride), strided(W, stride)}));
  }

  static T* grow(std::unique_ptr<T[]>& buffer, size_t& size, int64_t n) {
    if (size < size_t(n)) {
      buffer.reset(new T[size_t(n)]);
      size = size_t(n);
    }
    return buffer.get();
  }

  // the planes of channels [c0, c0 + K) in logical order, (n, k) at [n * K + k] (after the first unit)
  std::vector<T*> slots(int64_t c0, int64_t K) const {
    std::vector<T*> rows(size_t(N_ * K));
    for (int64_t n = 0; n < N_; ++n)
      for (int64_t k = 0; k < K; ++k) rows[size_t(n * K + k)] = own_plane(n, c0 + k);
    return rows;
  }

  // channels [c0, c0 + M) of a contiguous [N, C, HW] buffer, (n, i) at [n * M + i]
  template <class P>
  std::vector<P*> rows_at(P* base, int64_t C, int64_t M, int64_t c0, int64_t HW) const {
    std::vector<P*> rows(size_t(N_ * M));
    for (int64_t n = 0; n < N_; ++n)
      for (int64_t i = 0; i < M; ++i) rows[size_t(n * M + i)] = base + (n * C + c0 + i) * HW;
    return rows;
  }

  // every channel of a contiguous [N, C, HW] buffer
  template <class P>
  std::vector<P*> rows_at(P* base, int64_t C, int64_t HW) const {
    return rows_at(base, C, C, 0, HW);
  }

  void downsample(const ShuffleUnitViews& u) {
    const T* in = x_;
    if (planes_) {  // the planes gathered into logical order, the input of both branches
      T* g = grow(gathered_, gathered_size_, N_ * C_ * H_ * W_);
      gather(g);
      in = g;
    }
    const int64_t OH = strided(H_, 2), OW = strided(W_, 2), OHW = OH * OW, HW = H_ * W_;
    const int64_t half = u.pw2_weight.shape[0], C2 = 2 * half, mid = u.pw1_weight.shape[0];
    std::unique_ptr<T[]> next(new T[size_t(N_ * C2 * OHW)]);
    // branch 1: depthwise over every input channel, then 1x1 into channels [0, half)
    T* t = grow(dw_out_, dw_out_size_, N_ * C_ * OHW);
    depthwise(in, C_, H_, W_, 2, *u.branch1_dw_weight, u.branch1_dw_bias, t);
    pointwise(N_, OHW, *u.branch1_pw_weight, u.branch1_pw_bias, rows_at(t, C_, OHW).data(),
              rows_at(next.get(), C2, half, 0, OHW).data());
    // branch 2: 1x1, depthwise at stride 2, 1x1 into channels [half, C2)
    T* m = grow(pw_out_, pw_out_size_, N_ * mid * HW);
    pointwise(N_, HW, u.pw1_weight, u.pw1_bias, rows_at(in, C_, HW).data(), rows_at(m, mid, HW).data());
    T* d = grow(dw_out_, dw_out_size_, N_ * mid * OHW);
    depthwise(m, mid, H_, W_, 2, u.dw_weight, u.dw_bias, d);
    pointwise(N_, OHW, u.pw2_weight, u.pw2_bias, rows_at(d, mid, OHW).data(),
              rows_at(next.get(), C2, half, half, OHW).data());
    planes_ = std::move(next);
    C_ = C2;
    H_ = OH;
    W_ = OW;
    slot_.resize(size_t(C2));
    for (int64_t i = 0; i < half; ++i) {  // channel_shuffle(cat(y1, y2), 2)
      slot_[size_t(2 * i)] = i;
      slot_[size_t(2 * i + 1)] = half + i;
    }
  }

  void unit(const ShuffleUnitViews& u) {
    const int64_t HW = H_ * W_, half = C_ / 2, mid = u.pw1_weight.shape[0];
    if (!planes_) {  // the stage's first planes: a copy of x, which stays unwritten
      planes_.reset(new T[size_t(N_ * C_ * HW)]);
      std::memcpy(planes_.get(), x_, sizeof(T) * size_t(N_ * C_ * HW));
      slot_.resize(size_t(C_));
      for (int64_t c = 0; c < C_; ++c) slot_[size_t(c)] = c;
    }
    // x2's planes: read by the first 1x1, then overwritten by y
    const std::vector<T*> x2 = slots(half, half);
    T* m = grow(pw_out_, pw_out_size_, N_ * mid * HW);
    pointwise(N_, HW, u.pw1_weight, u.pw1_bias, x2.data(), rows_at(m, mid, HW).data());
    T* d = grow(dw_out_, dw_out_size_, N_ * mid * HW);
    depthwise(m, mid, H_, W_, 1, u.dw_weight, u.dw_bias, d);
    pointwise(N_, HW, u.pw2_weight, u.pw2_bias, rows_at(d, mid, HW).data(), x2.data());
    std::vector<int64_t> next(static_cast<size_t>(C_), 0);
    for (int64_t i = 0; i < half; ++i) {  // channel_shuffle(cat(x1, y), 2)
      next[size_t(2 * i)] = slot_[size_t(i)];
      next[size_t(2 * i + 1)] = slot_[size_t(half + i)];
    }
    slot_ = std::move(next);
  }

  int64_t N_, C_, H_, W_;
  const T* x_;
  std::unique_ptr<T[]> planes_;  // null until the first unit: the planes are then x's
  std::vector<int64_t> slot_;
  std::unique_ptr<T[]> pw_out_, dw_out_, gathered_;
  size_t pw_out_size_ = 0, dw_out_size_ = 0, gathered_size_ = 0;
};

}  // namespace

std::vector<int64_t> check_shufflenet_stage(const View& x, const std::vector<ShuffleUnitViews>& units) {
  NIMBLEOPS_CHECK(x.ndim() == 4, "x: expected [N, C, H, W], got shape ", shape_str(x));
  NIMBLEOPS_CHECK(x.dtype == DType::float32 || x.dtype == DType::float64, "x: expected float32 or float64, got ",
                  dtype_name(x.dtype));
  NIMBLEOPS_CHECK(x.device < 0, "x: expected a CPU array (the stage has no CUDA kernel)");
  check_contiguous(x, "x");
  int64_t C = x.shape[1], H = x.shape[2], W = x.shape[3];
  NIMBLEOPS_CHECK(C >= 1 && H >= 1 && W >= 1, "x: expected [N, C, H, W] with C, H, W >= 1, got shape ",
                  shape_str(x));
  for (size_t i = 0; i < units.size(); ++i) {
    const ShuffleUnitViews& u = units[i];
    const std::string name = "units[" + std::to_string(i) + "].";
    NIMBLEOPS_CHECK(u.stride == 1 || u.stride == 2, name, "stride: expected 1 or 2, got ", u.stride);
    const bool b1 = u.branch1_dw_weight || u.branch1_pw_weight;
    NIMBLEOPS_CHECK(b1 == (u.stride == 2) && (!b1 || (u.branch1_dw_weight && u.branch1_pw_weight)), name,
                    "branch1_dw_weight, branch1_pw_weight: expected both at stride 2 and neither at stride 1 (a "
                    "stride-", u.stride, " unit)");
    NIMBLEOPS_CHECK(b1 || (u.branch1_dw_bias == std::nullopt && u.branch1_pw_bias == std::nullopt), name,
                    "branch1 biases: a stride-1 unit has no branch1");
    if (u.stride == 1)
      NIMBLEOPS_CHECK(C % 2 == 0, name, "stride: a stride-1 unit splits its input in two halves; got ", C,
                      " channels");
    const int64_t branch_in = u.stride == 2 ? C : C / 2;
    const int64_t mid = check_pw(u.pw1_weight, u.pw1_bias, branch_in, x.dtype, name, "pw1");
    check_dw(u.dw_weight, u.dw_bias, mid, x.dtype, name, "dw");
    const int64_t half = check_pw(u.pw2_weight, u.pw2_bias, mid, x.dtype, name, "pw2");
    if (u.stride == 2) {
      check_dw(*u.branch1_dw_weight, u.branch1_dw_bias, C, x.dtype, name, "branch1_dw");
      const int64_t half1 = check_pw(*u.branch1_pw_weight, u.branch1_pw_bias, C, x.dtype, name, "branch1_pw");
      NIMBLEOPS_CHECK(half1 == half, name, "branch1_pw_weight: expected as many output channels as pw2_weight (",
                      half, "), got ", half1);
      C = 2 * half;
      H = strided(H, 2);
      W = strided(W, 2);
    } else {
      NIMBLEOPS_CHECK(half == C / 2, name, "pw2_weight: expected ", C / 2,
                      " output channels (half of the unit's input), got ", half);
    }
  }
  return {x.shape[0], C, H, W};
}

namespace cpu {

void shufflenet_stage(const View& x, const std::vector<ShuffleUnitViews>& units, const View& out) {
  const std::vector<int64_t> shape = check_shufflenet_stage(x, units);
  NIMBLEOPS_CHECK(out.device < 0, "out: expected a CPU array");
  check_contiguous(out, "out");
  check_dtype(out, x.dtype, "out");
  NIMBLEOPS_CHECK(out.shape == shape, "out: expected shape [", shape[0], ", ", shape[1], ", ", shape[2], ", ",
                  shape[3], "], got ", shape_str(out));
  check_disjoint({{"out", &out}}, {{"x", &x}});
  if (shape[0] == 0) return;
  NIMBLEOPS_DISPATCH_FLOATING(x.dtype, "x", [&] { Stage<scalar_t>(x).run(units, out); });
}

}  // namespace cpu
}  // namespace vision
}  // namespace nimbleops
