// Runs the public C++ API of every op family on inputs that tests/test_cpp_api.py wrote as raw
// little-endian files into a directory, and writes the outputs beside them for the test to compare
// with the Python API's. Usage: api_check DIR
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nimbleops/nimbleops.h>

namespace {

std::string dir;

template <class T>
std::vector<T> load(const std::string& name, size_t n) {
  std::vector<T> v(n);
  std::ifstream f(dir + "/" + name, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(T))))
    throw std::runtime_error("cannot read " + name);
  return v;
}

template <class T>
void save(const std::string& name, const std::vector<T>& v) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
}

using nimbleops::contiguous_view;
using nimbleops::View;

void depthwise() {  // x [2, 6, 9, 9], weight [12, 1, 3, 3], bias [12], stride 2, padding 1
  auto x = load<float>("dw_x", 2 * 6 * 9 * 9), w = load<float>("dw_w", 12 * 9), b = load<float>("dw_b", 12);
  auto g = load<float>("dw_grad", 2 * 12 * 5 * 5);
  std::vector<float> out(2 * 12 * 5 * 5), gx(x.size()), gw(w.size()), gb(b.size());
  nimbleops::vision::DepthwiseViews v;
  v.x = contiguous_view(x.data(), {2, 6, 9, 9});
  v.weight = contiguous_view(w.data(), {12, 1, 3, 3});
  v.bias = contiguous_view(b.data(), {12});
  v.KH = v.KW = 3;
  v.sh = v.sw = 2;
  v.pad_h = v.pad_w = 1;
  nimbleops::vision::depthwise_conv2d(v, contiguous_view(out.data(), {2, 12, 5, 5}));
  nimbleops::vision::depthwise_conv2d_backward(v, contiguous_view(g.data(), {2, 12, 5, 5}),
                                               contiguous_view(gx.data(), {2, 6, 9, 9}),
                                               contiguous_view(gw.data(), {12, 1, 3, 3}),
                                               contiguous_view(gb.data(), {12}));
  save("dw_out", out), save("dw_gx", gx), save("dw_gw", gw), save("dw_gb", gb);
}

void pointwise() {  // x [2, 8, 5, 5], weight [6, 4] (2 groups), bias [6], ReLU
  auto x = load<double>("pw_x", 2 * 8 * 25), w = load<double>("pw_w", 6 * 4), b = load<double>("pw_b", 6);
  auto g = load<double>("pw_grad", 2 * 6 * 25);
  std::vector<double> out(2 * 6 * 25), gx(x.size()), gw(w.size()), gb(b.size());
  nimbleops::vision::PointwiseViews v;
  v.x = contiguous_view(x.data(), {2, 8, 5, 5});
  v.weight = contiguous_view(w.data(), {6, 4});
  v.bias = contiguous_view(b.data(), {6});
  v.groups = 2;
  v.relu = true;
  const View o = contiguous_view(out.data(), {2, 6, 5, 5});
  nimbleops::vision::pointwise_conv2d(v, o);
  nimbleops::vision::pointwise_conv2d_backward(v, contiguous_view(g.data(), {2, 6, 5, 5}), o,
                                               contiguous_view(gx.data(), {2, 8, 5, 5}),
                                               contiguous_view(gw.data(), {6, 4}), contiguous_view(gb.data(), {6}));
  save("pw_out", out), save("pw_gx", gx), save("pw_gw", gw), save("pw_gb", gb);
}

void shuffle() {  // x [2, 6, 3, 3], 3 groups
  auto x = load<float>("sh_x", 2 * 6 * 9);
  std::vector<float> out(x.size());
  nimbleops::vision::channel_shuffle(contiguous_view(x.data(), {2, 6, 3, 3}), contiguous_view(out.data(), {2, 6, 3, 3}),
                                     3);
  save("sh_out", out);
}

void ps_roi() {  // input [1, 18, 10, 10], boxes [3, 5], 3 x 3 bins, align avg, 2 samples a side
  auto x = load<float>("roi_x", 18 * 100);
  auto boxes = load<double>("roi_boxes", 15);
  auto g = load<float>("roi_grad", 3 * 2 * 9);
  std::vector<float> out(3 * 2 * 9), gx(x.size());
  const auto v = nimbleops::vision::ps_roi_inputs(nimbleops::vision::PsRoiOp::align_avg,
                                                  contiguous_view(x.data(), {1, 18, 10, 10}),
                                                  contiguous_view(boxes.data(), {3, 5}), 3, 3, 0.5, 2, true, true, 0);
  nimbleops::vision::ps_roi(v, contiguous_view(out.data(), {3, 2, 3, 3}));
  nimbleops::vision::ps_roi_backward(v, contiguous_view(g.data(), {3, 2, 3, 3}),
                                    contiguous_view(gx.data(), {1, 18, 10, 10}));
  save("roi_out", out), save("roi_gx", gx);
}

void nms() {  // boxes [40, 4], scores [40] float32, groups [40] int64: nms 0.5, batched_nms 0.3 keeping 10
  auto boxes = load<float>("nms_boxes", 40 * 4), scores = load<float>("nms_scores", 40);
  auto groups = load<int64_t>("nms_groups", 40);
  std::vector<int64_t> keep(40), batched(40);
  const View b = contiguous_view(boxes.data(), {40, 4}), s = contiguous_view(scores.data(), {40});
  keep.resize(size_t(nimbleops::vision::nms(b, s, std::nullopt, 0.5, -1, contiguous_view(keep.data(), {40}))));
  batched.resize(size_t(nimbleops::vision::nms(b, s, contiguous_view(groups.data(), {40}), 0.3, 10,
                                               contiguous_view(batched.data(), {40}))));
  save("nms_keep", keep), save("nms_batched", batched);
}

// x [1, 6, 7, 7] float32 -> a stride-2 unit (3x3 depthwise, branch 2 3 wide) -> a stride-1 unit
// (5x5, 5 wide; no bias on its depthwise) -> [1, 8, 4, 4]
void shufflenet_stage() {
  auto x = load<float>("st_x", 6 * 49);
  auto a_dw = load<float>("st_a_dw", 6 * 9), a_dwb = load<float>("st_a_dwb", 6);
  auto a_pw = load<float>("st_a_pw", 4 * 6), a_pwb = load<float>("st_a_pwb", 4);
  auto a_pw1 = load<float>("st_a_pw1", 3 * 6), a_pw1b = load<float>("st_a_pw1b", 3);
  auto a_dw2 = load<float>("st_a_dw2", 3 * 9), a_dw2b = load<float>("st_a_dw2b", 3);
  auto a_pw2 = load<float>("st_a_pw2", 4 * 3), a_pw2b = load<float>("st_a_pw2b", 4);
  auto b_pw1 = load<float>("st_b_pw1", 5 * 4), b_pw1b = load<float>("st_b_pw1b", 5);
  auto b_dw = load<float>("st_b_dw", 5 * 25);
  auto b_pw2 = load<float>("st_b_pw2", 4 * 5), b_pw2b = load<float>("st_b_pw2b", 4);
  std::vector<nimbleops::vision::ShuffleUnitViews> units(2);
  units[0].stride = 2;
  units[0].branch1_dw_weight = contiguous_view(a_dw.data(), {6, 1, 3, 3});
  units[0].branch1_dw_bias = contiguous_view(a_dwb.data(), {6});
  units[0].branch1_pw_weight = contiguous_view(a_pw.data(), {4, 6});
  units[0].branch1_pw_bias = contiguous_view(a_pwb.data(), {4});
  units[0].pw1_weight = contiguous_view(a_pw1.data(), {3, 6});
  units[0].pw1_bias = contiguous_view(a_pw1b.data(), {3});
  units[0].dw_weight = contiguous_view(a_dw2.data(), {3, 1, 3, 3});
  units[0].dw_bias = contiguous_view(a_dw2b.data(), {3});
  units[0].pw2_weight = contiguous_view(a_pw2.data(), {4, 3});
  units[0].pw2_bias = contiguous_view(a_pw2b.data(), {4});
  units[1].pw1_weight = contiguous_view(b_pw1.data(), {5, 4});
  units[1].pw1_bias = contiguous_view(b_pw1b.data(), {5});
  units[1].dw_weight = contiguous_view(b_dw.data(), {5, 1, 5, 5});
  units[1].pw2_weight = contiguous_view(b_pw2.data(), {4, 5});
  units[1].pw2_bias = contiguous_view(b_pw2b.data(), {4});
  const View xv = contiguous_view(x.data(), {1, 6, 7, 7});
  const std::vector<int64_t> shape = nimbleops::vision::shufflenet_stage_shape(xv, units);
  if (shape != std::vector<int64_t>{1, 8, 4, 4}) throw std::runtime_error("shufflenet_stage_shape");
  std::vector<float> out(8 * 16);
  nimbleops::vision::shufflenet_stage(xv, units, contiguous_view(out.data(), {1, 8, 4, 4}));
  save("st_out", out);
}

// x [2, 3, 13, 15] float64, weight [5, 3, 3, 3], bias [5], stride 2, padding 1, pool 3 / 2 / 1
void conv_pool() {
  auto x = load<double>("cp_x", 2 * 3 * 13 * 15), w = load<double>("cp_w", 5 * 27), b = load<double>("cp_b", 5);
  nimbleops::vision::ConvPoolViews v;
  v.x = contiguous_view(x.data(), {2, 3, 13, 15});
  v.weight = contiguous_view(w.data(), {5, 3, 3, 3});
  v.bias = contiguous_view(b.data(), {5});
  v.stride = 2;
  v.padding = 1;
  const std::vector<int64_t> shape = nimbleops::vision::conv2d_relu_max_pool_shape(v);
  if (shape != std::vector<int64_t>{2, 5, 4, 4}) throw std::runtime_error("conv2d_relu_max_pool_shape");
  std::vector<double> out(2 * 5 * 4 * 4);
  nimbleops::vision::conv2d_relu_max_pool(v, contiguous_view(out.data(), {2, 5, 4, 4}));
  save("cp_out", out);
}

void lambda_returns() {  // [T, B] = [16, 3], gamma per step, lam 0.8
  const size_t n = 16 * 3;
  auto r = load<double>("ret_r", n), nv = load<double>("ret_nv", n), gamma = load<double>("ret_gamma", n);
  auto term = load<uint8_t>("ret_term", n), trunc = load<uint8_t>("ret_trunc", n);
  std::vector<double> out(n);
  nimbleops::rl::ReturnsViews v;
  v.estimator = nimbleops::rl::Estimator::lambda;
  v.rewards = contiguous_view(r.data(), {16, 3});
  v.next_values = contiguous_view(nv.data(), {16, 3});
  v.terminated = contiguous_view(term.data(), {16, 3});
  v.truncated = contiguous_view(trunc.data(), {16, 3});
  v.gamma = contiguous_view(gamma.data(), {16, 3});
  v.lam = 0.8;
  nimbleops::rl::estimate_returns(v, contiguous_view(out.data(), {16, 3}));
  save("ret_out", out);
}

void sparse_value_iteration() {  // CSR over S*A = 50 * 3 rows, span rule
  auto indptr = load<int64_t>("mdp_indptr", 151);
  const size_t nnz = size_t(indptr.back());
  auto indices = load<int32_t>("mdp_indices", nnz);
  auto data = load<double>("mdp_data", nnz), R = load<double>("mdp_R", 150);
  std::vector<double> V(50, 0.0);
  std::vector<int64_t> policy(50);
  const auto mdp = nimbleops::rl::sparse_mdp(contiguous_view(indptr.data(), {151}),
                                             contiguous_view(indices.data(), {int64_t(nnz)}),
                                             contiguous_view(data.data(), {int64_t(nnz)}),
                                             contiguous_view(R.data(), {50, 3}), 50, 3);
  nimbleops::rl::value_iteration(mdp, 0.9, contiguous_view(V.data(), {1, 50}), contiguous_view(policy.data(), {1, 50}),
                                 1e-8, 10000, nimbleops::rl::StopRule::span);
  save("mdp_V", V), save("mdp_policy", policy);
}

void traces() {  // sarsa(lambda), replacing traces: Q [7, 2], e [4, 7, 2], 4 environments
  auto Q = load<double>("tr_Q", 14), e = load<double>("tr_e", 56), r = load<double>("tr_r", 4);
  auto s = load<int64_t>("tr_s", 4), a = load<int64_t>("tr_a", 4), s2 = load<int64_t>("tr_s2", 4),
       a2 = load<int64_t>("tr_a2", 4);
  auto term = load<uint8_t>("tr_term", 4), trunc = load<uint8_t>("tr_trunc", 4);
  std::vector<double> td(4);
  nimbleops::rl::TabularTraceViews v;
  v.rule = nimbleops::rl::TraceRule::sarsa_lambda;
  v.kind = nimbleops::rl::TraceKind::replacing;
  v.Q = contiguous_view(Q.data(), {7, 2});
  v.e = contiguous_view(e.data(), {4, 7, 2});
  v.s = contiguous_view(s.data(), {4});
  v.a = contiguous_view(a.data(), {4});
  v.s_next = contiguous_view(s2.data(), {4});
  v.a_next = contiguous_view(a2.data(), {4});
  v.rewards = contiguous_view(r.data(), {4});
  v.terminated = contiguous_view(term.data(), {4});
  v.truncated = contiguous_view(trunc.data(), {4});
  v.alpha = 0.5;
  v.gamma = 0.9;
  v.lam = 0.7;
  nimbleops::rl::tabular_trace_step_(v, contiguous_view(td.data(), {4}));
  save("tr_Q_out", Q), save("tr_e_out", e), save("tr_td", td);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: api_check DIR\n");
    return 2;
  }
  dir = argv[1];
  depthwise();
  pointwise();
  shuffle();
  ps_roi();
  nms();
  shufflenet_stage();
  conv_pool();
  lambda_returns();
  sparse_value_iteration();
  traces();
  std::printf("ok\n");
  return 0;
}
