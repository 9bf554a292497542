// pybind11 for the RL family: views in, GIL released around every kernel.
#include <algorithm>
#include <limits>

#include "bindings/common.h"
#include "bindings/plain_call.h"
#include "rl/bellman_api.h"
#include "rl/returns_api.h"
#include "rl/td_api.h"
#include "rl/traces_api.h"

namespace py = pybind11;

namespace nimbleops {

namespace {

py::tuple stats_to_python(const rl::SolveStats& s) {
  auto it = py::array_t<int64_t>(s.iterations.size(), s.iterations.data());
  auto res = py::array_t<double>(s.residual.size(), s.residual.data());
  auto conv = py::array_t<bool>(s.converged.size());
  for (size_t i = 0; i < s.converged.size(); ++i) conv.mutable_at(i) = s.converged[i] != 0;
  return py::make_tuple(it, res, conv);
}

rl::StopRule stop_rule(const std::string& s) {
  return parse_enum<rl::StopRule>(s, {{"sup", rl::StopRule::sup}, {"span", rl::StopRule::span}}, "stop");
}

#define NIMBLEOPS_BIND_BELLMAN(ns, suffix)                                                                     \
  m.def("q_values_" suffix, [](const rl::MdpViews& mdp, const View& V, double gamma, const View& Q) {          \
    py::gil_scoped_release nogil;                                                                              \
    rl::ns::q_values(mdp, V, gamma, Q);                                                                        \
  });                                                                                                          \
  m.def("optimality_backup_" suffix,                                                                           \
        [](const rl::MdpViews& mdp, const View& V, double gamma, const View& V_out, const View& policy_out) {  \
          py::gil_scoped_release nogil;                                                                        \
          rl::ns::optimality_backup(mdp, V, gamma, V_out, policy_out);                                         \
        });                                                                                                    \
  m.def("expectation_backup_" suffix,                                                                          \
        [](const rl::MdpViews& mdp, const View& V, double gamma, const View& policy, const View& V_out) {      \
          py::gil_scoped_release nogil;                                                                        \
          rl::ns::expectation_backup(mdp, V, gamma, policy, V_out);                                            \
        });                                                                                                    \
  m.def("value_iteration_" suffix, [](const rl::MdpViews& mdp, double gamma, const View& V, const View& policy, \
                                      double tol, int64_t max_iter, const std::string& stop, bool gs) {        \
    rl::StopRule rule = stop_rule(stop);                                                                       \
    rl::SolveStats s(0);                                                                                       \
    {                                                                                                          \
      py::gil_scoped_release nogil;                                                                            \
      s = rl::ns::value_iteration(mdp, gamma, V, policy, tol, max_iter, rule, gs);                             \
    }                                                                                                          \
    return stats_to_python(s);                                                                                 \
  });                                                                                                          \
  m.def("policy_evaluation_" suffix, [](const rl::MdpViews& mdp, double gamma, const View& policy, const View& V, \
                                        double tol, int64_t max_iter) {                                        \
    rl::SolveStats s(0);                                                                                       \
    {                                                                                                          \
      py::gil_scoped_release nogil;                                                                            \
      s = rl::ns::policy_evaluation(mdp, gamma, policy, V, tol, max_iter);                                     \
    }                                                                                                          \
    return stats_to_python(s);                                                                                 \
  });                                                                                                          \
  m.def("policy_iteration_" suffix, [](const rl::MdpViews& mdp, double gamma, const View& V, const View& policy, \
                                       double eval_tol, int64_t eval_max_iter, int64_t max_iter) {             \
    rl::SolveStats s(0);                                                                                       \
    {                                                                                                          \
      py::gil_scoped_release nogil;                                                                            \
      s = rl::ns::policy_iteration(mdp, gamma, V, policy, eval_tol, eval_max_iter, max_iter);                  \
    }                                                                                                          \
    return stats_to_python(s);                                                                                 \
  });                                                                                                          \
  m.def("modified_policy_iteration_" suffix, [](const rl::MdpViews& mdp, double gamma, const View& V,          \
                                                const View& policy, int64_t k, double tol, int64_t max_iter) { \
    rl::SolveStats s(0);                                                                                       \
    {                                                                                                          \
      py::gil_scoped_release nogil;                                                                            \
      s = rl::ns::modified_policy_iteration(mdp, gamma, V, policy, k, tol, max_iter);                          \
    }                                                                                                          \
    return stats_to_python(s);                                                                                 \
  });                                                                                                          \
  m.def("finite_horizon_" suffix,                                                                              \
        [](const rl::MdpViews& mdp, double gamma, int64_t horizon, const View& V, const View& policy) {       \
          py::gil_scoped_release nogil;                                                                        \
          rl::ns::finite_horizon(mdp, gamma, horizon, V, policy);                                              \
        });

}  // namespace

void bind_rl(py::module_& m) {
  py::class_<rl::MdpViews>(m, "Mdp")
      .def_readwrite("stream", &rl::MdpViews::stream)
      .def_readwrite("leaky", &rl::MdpViews::leaky)
      .def_readwrite("fused_check", &rl::MdpViews::fused_check)
      .def_static("dense", &rl::dense_views)
      .def_static("sparse", &rl::sparse_views);

  m.def("check_csr", [](const View& indptr, const View& indices, int64_t S, int64_t A) {
    py::gil_scoped_release nogil;
    rl::cpu::check_csr(indptr, indices, S, A);
  });

  m.def("csr_row_sums", [](const View& indptr, const View& data) {
    rl::cpu::CsrRowSums s;
    {
      py::gil_scoped_release nogil;
      s = rl::cpu::csr_row_sums(indptr, data);
    }
    return py::make_tuple(s.min_sum, s.max_sum, s.max_row, s.bad_value);
  });

  m.def("check_index_range", [](const View& idx, int64_t hi, const std::string& name) {
    py::gil_scoped_release nogil;
    rl::cpu::check_index_range(idx, hi, name.c_str(), idx.numel());
  });
  m.def("all_finite", [](const View& x) {
    py::gil_scoped_release nogil;
    return rl::cpu::all_finite(x);
  });
  m.def("check_rewards", [](const View& R, int64_t A) {
    py::gil_scoped_release nogil;
    rl::cpu::check_rewards(R, A);
  });
  m.def("check_probabilities", [](const View& P, int64_t row_length, double tol, const std::string& name) {
    py::gil_scoped_release nogil;
    rl::cpu::check_probabilities(P, row_length, tol, name.c_str());
  });

  NIMBLEOPS_BIND_BELLMAN(cpu, "cpu")
#ifdef NIMBLEOPS_WITH_CUDA
  NIMBLEOPS_BIND_BELLMAN(cuda, "cuda")
#endif

  py::class_<rl::ReturnsViews>(m, "ReturnsInputs")
      .def(py::init([](const std::string& estimator, const View& rewards, std::optional<View> values,
                       const View& next_values, const View& terminated, const View& truncated,
                       std::optional<View> gamma, double gamma_scalar, double lam, int64_t n,
                       std::optional<View> rhos, std::optional<View> traces, uintptr_t stream) {
             rl::ReturnsViews v;
             v.estimator = parse_enum<rl::Estimator>(estimator,
                                                     {{"discounted", rl::Estimator::discounted},
                                                      {"lambda", rl::Estimator::lambda},
                                                      {"gae", rl::Estimator::gae},
                                                      {"n_step", rl::Estimator::n_step},
                                                      {"vtrace", rl::Estimator::vtrace}},
                                                     "estimator");
             v.rewards = rewards;
             v.values = values;
             v.next_values = next_values;
             v.terminated = terminated;
             v.truncated = truncated;
             v.gamma = gamma;
             v.gamma_scalar = gamma_scalar;
             v.lam = lam;
             v.n = n;
             v.rhos = rhos;
             v.traces = traces;
             v.stream = stream;
             rl::validate_returns(v);
             return v;
           }),
           py::arg("estimator"), py::arg("rewards"), py::arg("values"), py::arg("next_values"), py::arg("terminated"),
           py::arg("truncated"), py::arg("gamma"), py::arg("gamma_scalar"), py::arg("lam"), py::arg("n"),
           py::arg("rhos"), py::arg("traces"), py::arg("stream"));

#define NIMBLEOPS_BIND_RETURNS(ns, suffix)                                                                  \
  m.def("returns_forward_" suffix, [](const rl::ReturnsViews& v, const View& out0, std::optional<View> out1) { \
    py::gil_scoped_release nogil;                                                                           \
    rl::ns::returns_forward(v, out0, out1);                                                                 \
  });                                                                                                       \
  m.def("returns_backward_" suffix, [](const rl::ReturnsViews& v, std::optional<View> g0, std::optional<View> g1, \
                                       const View& gr, std::optional<View> gv, const View& gnv) {          \
    py::gil_scoped_release nogil;                                                                           \
    rl::ns::returns_backward(v, g0, g1, gr, gv, gnv);                                                       \
  });

#define NIMBLEOPS_BIND_TD(ns, suffix)                                                                            \
  m.def(                                                                                                         \
      "td_update_" suffix,                                                                                       \
      [](const std::string& rule, bool sequential, const View& Q, std::optional<View> Q2, const View& s,         \
         const View& s_next, std::optional<View> a, std::optional<View> a_next, const View& rewards,             \
         const View& terminated, std::optional<View> alpha, double alpha_scalar, std::optional<View> gamma,      \
         double gamma_scalar, std::optional<View> probs, double epsilon, std::optional<View> update_first,       \
         const View& td_errors, uintptr_t stream) {                                                              \
        rl::TdViews v;                                                                                           \
        v.rule = parse_enum<rl::TdRule>(rule,                                                                    \
                                        {{"td0", rl::TdRule::td0},                                               \
                                         {"sarsa", rl::TdRule::sarsa},                                           \
                                         {"q_learning", rl::TdRule::q_learning},                                 \
                                         {"expected_sarsa", rl::TdRule::expected_sarsa},                         \
                                         {"double_q", rl::TdRule::double_q}},                                    \
                                        "rule");                                                                 \
        v.sequential = sequential;                                                                               \
        v.Q = Q;                                                                                                 \
        v.Q2 = Q2;                                                                                               \
        v.s = s;                                                                                                 \
        v.s_next = s_next;                                                                                       \
        v.a = a;                                                                                                 \
        v.a_next = a_next;                                                                                       \
        v.rewards = rewards;                                                                                     \
        v.terminated = terminated;                                                                               \
        v.alpha = alpha;                                                                                         \
        v.alpha_scalar = alpha_scalar;                                                                           \
        v.gamma = gamma;                                                                                         \
        v.gamma_scalar = gamma_scalar;                                                                           \
        v.probs = probs;                                                                                         \
        v.epsilon = epsilon;                                                                                     \
        v.update_first = update_first;                                                                           \
        v.stream = stream;                                                                                       \
        rl::check_td_disjoint(v, td_errors);                                                                     \
        py::gil_scoped_release nogil;                                                                            \
        TableLocks locks{Q.data, Q2 ? Q2->data : nullptr};                                                       \
        rl::ns::td_update(v, td_errors);                                                                         \
      });

#define NIMBLEOPS_BIND_TRACES(ns, suffix) \
  m.def("tabular_trace_step_" suffix,                                                                                  \
        [](const std::string& rule, const std::string& kind, const View& Q, const View& e, const View& s,              \
           const View& s_next, std::optional<View> a, std::optional<View> a_next, const View& rewards,                 \
           const View& terminated, const View& truncated, double alpha, double gamma, double lam,                      \
           const View& td_errors, uintptr_t stream) {                                                                  \
          rl::TabularTraceViews v;                                                                                     \
          v.rule = parse_enum<rl::TraceRule>(rule,                                                                     \
                                             {{"td_lambda", rl::TraceRule::td_lambda},                                 \
                                              {"sarsa_lambda", rl::TraceRule::sarsa_lambda},                           \
                                              {"watkins_q_lambda", rl::TraceRule::watkins_q_lambda}},                  \
                                             "rule");                                                                  \
          v.kind = parse_enum<rl::TraceKind>(kind,                                                                     \
                                             {{"accumulating", rl::TraceKind::accumulating},                           \
                                              {"replacing", rl::TraceKind::replacing},                                 \
                                              {"dutch", rl::TraceKind::dutch}},                                        \
                                             "kind");                                                                  \
          v.Q = Q;                                                                                                     \
          v.e = e;                                                                                                     \
          v.s = s;                                                                                                     \
          v.s_next = s_next;                                                                                           \
          v.a = a;                                                                                                     \
          v.a_next = a_next;                                                                                           \
          v.rewards = rewards;                                                                                         \
          v.terminated = terminated;                                                                                   \
          v.truncated = truncated;                                                                                     \
          v.alpha = alpha;                                                                                             \
          v.gamma = gamma;                                                                                             \
          v.lam = lam;                                                                                                 \
          v.stream = stream;                                                                                           \
          rl::check_trace_disjoint(v, td_errors);                                                                      \
          py::gil_scoped_release nogil;                                                                                \
          TableLocks locks{Q.data, e.data};                                                                            \
          rl::ns::tabular_trace_step(v, td_errors);                                                                    \
        });                                                                                                            \
  m.def("linear_td_step_" suffix,                                                                                      \
        [](const std::string& rule, const View& w, std::optional<View> z, std::optional<View> v_old, const View& phi,  \
           const View& rewards, const View& phi_next, const View& terminated, std::optional<View> truncated,           \
           double alpha, double gamma, double lam, const View& td_errors, uintptr_t stream) {                          \
          rl::LinearTraceViews v;                                                                                      \
          v.rule = parse_enum<rl::LinearRule>(rule,                                                                    \
                                              {{"td0", rl::LinearRule::td0},                                           \
                                               {"td_lambda", rl::LinearRule::td_lambda},                               \
                                               {"true_online", rl::LinearRule::true_online}},                          \
                                              "rule");                                                                 \
          v.w = w;                                                                                                     \
          v.z = z;                                                                                                     \
          v.v_old = v_old;                                                                                             \
          v.phi = phi;                                                                                                 \
          v.rewards = rewards;                                                                                         \
          v.phi_next = phi_next;                                                                                       \
          v.terminated = terminated;                                                                                   \
          v.truncated = truncated;                                                                                     \
          v.alpha = alpha;                                                                                             \
          v.gamma = gamma;                                                                                             \
          v.lam = lam;                                                                                                 \
          v.stream = stream;                                                                                           \
          rl::check_trace_disjoint(v, td_errors);                                                                      \
          py::gil_scoped_release nogil;                                                                                \
          TableLocks locks{w.data, z ? z->data : nullptr, v_old ? v_old->data : nullptr};                              \
          rl::ns::linear_td_step(v, td_errors);                                                                        \
        });                                                                                                            \

  // The return estimators' plain call (bindings/plain_call.h): time-major rollouts [T, *batch]
  // of one float dtype and shape (masks bool), gamma and lam numbers in [0, 1], n an int >= 1,
  // time_dim 0, no log_rhos. (out0, out1 or None), or None for any other call.
  m.def(
      "returns_plain",
      [](const std::string& estimator, py::handle rewards, py::handle values, py::handle next_values,
         py::handle terminated, py::handle truncated, py::handle gamma, py::handle lam, py::handle n,
         py::handle time_dim) -> py::object {
        rl::ReturnsViews v;
        v.estimator = parse_enum<rl::Estimator>(estimator,
                                                {{"discounted", rl::Estimator::discounted},
                                                 {"lambda", rl::Estimator::lambda},
                                                 {"gae", rl::Estimator::gae},
                                                 {"n_step", rl::Estimator::n_step}},
                                                "estimator");
        const bool two_outputs = v.estimator == rl::Estimator::gae;
        if (!plain::read_number(gamma.ptr(), 0.0, 1.0, v.gamma_scalar) ||
            !plain::read_number(lam.ptr(), 0.0, 1.0, v.lam) || !plain::read_int(n.ptr(), 1, plain::kIntLimit, v.n) ||
            !plain::read_int(time_dim.ptr(), 0, 0))
          return py::none();
        plain::Args args;
        const View& r = v.rewards;  // the views are read in place: no copies
        if (!args.read_float(rewards.ptr(), v.rewards) || r.ndim() == 0 || r.numel() == 0 ||
            !args.read_like(next_values.ptr(), r.dtype, r, v.next_values) ||
            !args.read_like(terminated.ptr(), DType::boolean, r, v.terminated) ||
            !args.read_like(truncated.ptr(), DType::boolean, r, v.truncated))
          return py::none();
        if (!args.read_like_if(two_outputs, values.ptr(), r.dtype, r, v.values)) return py::none();
        View out0;
        std::optional<View> out1;
        py::object o0 = args.empty_like(rewards.ptr(), r, out0);
        py::object o1 = two_outputs ? args.empty_like(rewards.ptr(), r, out1.emplace()) : py::none();
        const int64_t T = r.shape[0], B = r.numel() / T;  // [T, *batch] as [T, B]
        for (View* x : {&v.rewards, &v.next_values, &v.terminated, &v.truncated, &out0, v.values ? &*v.values : nullptr,
                        out1 ? &*out1 : nullptr})
          if (x) x->shape.assign({T, B}), x->strides.assign({B, 1});
        rl::validate_returns(v);
        {
          py::gil_scoped_release nogil;
          rl::cpu::returns_forward(v, out0, out1);
        }
        return py::make_tuple(o0, o1);
      },
      py::arg("estimator"), py::arg("rewards"), py::arg("values"), py::arg("next_values"), py::arg("terminated"),
      py::arg("truncated"), py::arg("gamma"), py::arg("lam"), py::arg("n"), py::arg("time_dim"));

  // The eligibility-trace steps' plain calls (bindings/plain_call.h): a writeable float table or
  // weight vector with its traces (and v_old) of its dtype and shape, int64 indices, rewards of
  // its dtype and bool masks, all [B] and of one kind; alpha, gamma, lam numbers in range; a
  // known trace kind. The TD errors, or None for any other call.
  m.def(
      "tabular_trace_plain",
      [](const std::string& rule, py::handle Q, py::handle e, py::handle s, py::handle a, py::handle r,
         py::handle s_next, py::handle a_next, py::handle terminated, py::handle truncated, py::handle alpha,
         py::handle gamma, py::handle lam, py::handle kind) -> py::object {
        rl::TabularTraceViews v;
        v.rule = parse_enum<rl::TraceRule>(rule,
                                           {{"td_lambda", rl::TraceRule::td_lambda},
                                            {"sarsa_lambda", rl::TraceRule::sarsa_lambda},
                                            {"watkins_q_lambda", rl::TraceRule::watkins_q_lambda}},
                                           "rule");
        if (!PyUnicode_Check(kind.ptr())) return py::none();
        if (PyUnicode_CompareWithASCIIString(kind.ptr(), "accumulating") == 0) v.kind = rl::TraceKind::accumulating;
        else if (PyUnicode_CompareWithASCIIString(kind.ptr(), "replacing") == 0) v.kind = rl::TraceKind::replacing;
        else if (PyUnicode_CompareWithASCIIString(kind.ptr(), "dutch") == 0) v.kind = rl::TraceKind::dutch;
        else return py::none();
        if (!plain::read_number(alpha.ptr(), 0.0, 1.0, v.alpha) ||
            !plain::read_number(gamma.ptr(), 0.0, 1.0, v.gamma) ||
            !plain::read_number(lam.ptr(), 0.0, 1.0, v.lam))
          return py::none();
        plain::Args args;
        const bool td = v.rule == rl::TraceRule::td_lambda;
        if (!args.read_table(Q.ptr(), v.Q) || v.Q.ndim() != (td ? 1 : 2) || v.Q.numel() == 0 ||
            !args.read(s.ptr(), DType::int64, v.s) || v.s.ndim() != 1 || !args.read_table(e.ptr(), v.e) ||
            v.e.dtype != v.Q.dtype || v.e.ndim() != v.Q.ndim() + 1 || v.e.shape[0] != v.s.shape[0] ||
            !std::equal(v.Q.shape.begin(), v.Q.shape.end(), v.e.shape.begin() + 1) ||
            !args.read_like(s_next.ptr(), DType::int64, v.s, v.s_next) ||
            !args.read_like(r.ptr(), v.Q.dtype, v.s, v.rewards) ||
            !args.read_like(terminated.ptr(), DType::boolean, v.s, v.terminated) ||
            !args.read_like(truncated.ptr(), DType::boolean, v.s, v.truncated))
          return py::none();
        if (!args.read_like_if(!td, a.ptr(), DType::int64, v.s, v.a) ||
            !args.read_like_if(!td, a_next.ptr(), DType::int64, v.s, v.a_next))
          return py::none();
        if (td) {  // V [S] and e [B, S] as [S, 1] and [B, S, 1]
          v.Q.shape.push_back(1), v.Q.strides.push_back(1);
          v.e.shape.push_back(1), v.e.strides = {v.e.shape[1], 1, 1};
        }
        View td_errors;
        py::object out = args.empty_like(r.ptr(), v.rewards, td_errors);
        rl::check_trace_disjoint(v, td_errors);
        {
          py::gil_scoped_release nogil;
          TableLocks locks{v.Q.data, v.e.data};
          rl::cpu::tabular_trace_step(v, td_errors);
        }
        args.bump_version(Q.ptr());
        args.bump_version(e.ptr());
        return out;
      },
      py::arg("rule"), py::arg("Q"), py::arg("e"), py::arg("s"), py::arg("a"), py::arg("r"), py::arg("s_next"),
      py::arg("a_next"), py::arg("terminated"), py::arg("truncated"), py::arg("alpha"), py::arg("gamma"),
      py::arg("lam"), py::arg("kind"));
  m.def(
      "linear_trace_plain",
      [](const std::string& rule, py::handle w, py::handle z, py::handle v_old, py::handle phi, py::handle r,
         py::handle phi_next, py::handle terminated, py::handle truncated, py::handle alpha, py::handle gamma,
         py::handle lam) -> py::object {
        rl::LinearTraceViews v;
        v.rule = parse_enum<rl::LinearRule>(rule,
                                            {{"td0", rl::LinearRule::td0},
                                             {"td_lambda", rl::LinearRule::td_lambda},
                                             {"true_online", rl::LinearRule::true_online}},
                                            "rule");
        if (!plain::read_number(alpha.ptr(), 0.0, std::numeric_limits<double>::infinity(), v.alpha) ||
            !plain::read_number(gamma.ptr(), 0.0, 1.0, v.gamma) || !plain::read_number(lam.ptr(), 0.0, 1.0, v.lam))
          return py::none();
        plain::Args args;
        if (!args.read_table(w.ptr(), v.w) || v.w.ndim() != 1 || v.w.numel() == 0 ||
            !args.read(phi.ptr(), v.w.dtype, v.phi) || v.phi.ndim() != 2 || v.phi.shape[1] != v.w.shape[0] ||
            !args.read_like(phi_next.ptr(), v.w.dtype, v.phi, v.phi_next))
          return py::none();
        const std::vector<int64_t> rows = {v.phi.shape[0]};
        auto row_array = [&](py::handle x, DType dtype, View& out) {
          return args.read(x.ptr(), dtype, out) && out.shape == rows;
        };
        if (!row_array(r, v.w.dtype, v.rewards) || !row_array(terminated, DType::boolean, v.terminated))
          return py::none();
        const bool traces = v.rule != rl::LinearRule::td0, online = v.rule == rl::LinearRule::true_online;
        if (traces) {
          View t, zz;
          if (!row_array(truncated, DType::boolean, t) || !args.read_table(z.ptr(), zz) || zz.shape != v.phi.shape ||
              zz.dtype != v.w.dtype)
            return py::none();
          v.truncated = t, v.z = zz;
        } else if (!truncated.is_none() || !z.is_none()) {
          return py::none();
        }
        if (online) {
          View old;
          if (!args.read_table(v_old.ptr(), old) || old.shape != rows || old.dtype != v.w.dtype) return py::none();
          v.v_old = old;
        } else if (!v_old.is_none()) {
          return py::none();
        }
        View td_errors;
        py::object out = args.empty_like(r.ptr(), v.rewards, td_errors);
        rl::check_trace_disjoint(v, td_errors);
        {
          py::gil_scoped_release nogil;
          TableLocks locks{v.w.data, v.z ? v.z->data : nullptr, v.v_old ? v.v_old->data : nullptr};
          rl::cpu::linear_td_step(v, td_errors);
        }
        for (py::handle x : {w, z, v_old})
          if (!x.is_none()) args.bump_version(x.ptr());
        return out;
      },
      py::arg("rule"), py::arg("w"), py::arg("z"), py::arg("v_old"), py::arg("phi"), py::arg("r"), py::arg("phi_next"),
      py::arg("terminated"), py::arg("truncated"), py::arg("alpha"), py::arg("gamma"), py::arg("lam"));

  // The Bellman operators' plain call (bindings/plain_call.h) for q_values and the optimality
  // backup: a dense P [..., S, A, S], R [..., S, A] and V [..., S] of one float dtype and kind,
  // gamma a number in [0, 1], check a bool (the probability check fused into the sweep, the rows
  // summing to at most 1 + tolerance[dtype]: mdp.py's ROW_SUM_TOL). Q, or (V_new, policy); None
  // for any other call.
  m.def(
      "bellman_plain",
      [](const std::string& op, py::handle P, py::handle R, py::handle V, py::handle gamma, py::handle check,
         double tolerance_float32, double tolerance_float64) -> py::object {
        const bool backup = parse_enum<bool>(op, {{"q_values", false}, {"optimality_backup", true}}, "op");
        double g;
        if (!plain::read_number(gamma.ptr(), 0.0, 1.0, g) || (check.ptr() != Py_True && check.ptr() != Py_False))
          return py::none();
        plain::Args args;
        View Pv, Rv, Vv;
        if (!args.read_float(P.ptr(), Pv) || Pv.ndim() < 3) return py::none();
        const int n = Pv.ndim();
        const int64_t S = Pv.shape[size_t(n - 1)], A = Pv.shape[size_t(n - 2)];
        if (Pv.shape[size_t(n - 3)] != S || S < 1 || A < 1) return py::none();
        std::vector<int64_t> batch(Pv.shape.begin(), Pv.shape.end() - 3), r_shape = batch, v_shape = batch;
        r_shape.insert(r_shape.end(), {S, A});
        v_shape.push_back(S);
        if (!args.read(R.ptr(), Pv.dtype, Rv) || Rv.shape != r_shape || !args.read(V.ptr(), Pv.dtype, Vv) ||
            Vv.shape != v_shape)
          return py::none();
        int64_t B = 1;
        for (int64_t b : batch) B *= b;
        rl::cpu::check_rewards(Rv, A);
        rl::MdpViews mdp = rl::dense_views(Pv, Rv, B, S, A);
        if (check.ptr() == Py_True)
          mdp.fused_check = Pv.dtype == DType::float32 ? tolerance_float32 : tolerance_float64;
        if (!backup) {
          View Q;
          py::object out = args.empty_like(R.ptr(), Rv, Q);
          py::gil_scoped_release nogil;
          rl::cpu::q_values(mdp, Vv, g, Q);
          return out;
        }
        View V_new, policy;
        py::object v_out = args.empty_like(V.ptr(), Vv, V_new);
        py::object p_out = args.empty(v_shape, DType::int64, policy);
        {
          py::gil_scoped_release nogil;
          rl::cpu::optimality_backup(mdp, Vv, g, V_new, policy);
        }
        return py::make_tuple(v_out, p_out);
      },
      py::arg("op"), py::arg("P"), py::arg("R"), py::arg("V"), py::arg("gamma"), py::arg("check"),
      py::arg("tolerance_float32"), py::arg("tolerance_float64"));

  // The TD updates' plain call (bindings/plain_call.h) for td0, sarsa and q_learning: a writeable
  // float table (V [S] or Q [S, A]), int64 indices, rewards of the table's dtype and a bool mask,
  // all [N] and of the table's kind; alpha a finite number >= 0, gamma one in [0, 1]; mode
  // "sequential" or "accumulate". The TD errors, or None for any other call.
  m.def(
      "td_update_plain",
      [](const std::string& rule, py::handle Q, py::handle s, py::handle a, py::handle r, py::handle s_next,
         py::handle a_next, py::handle terminated, py::handle alpha, py::handle gamma, py::handle mode) -> py::object {
        rl::TdViews v;
        v.rule = parse_enum<rl::TdRule>(
            rule, {{"td0", rl::TdRule::td0}, {"sarsa", rl::TdRule::sarsa}, {"q_learning", rl::TdRule::q_learning}},
            "rule");
        if (!PyUnicode_Check(mode.ptr())) return py::none();
        if (PyUnicode_CompareWithASCIIString(mode.ptr(), "sequential") == 0) v.sequential = true;
        else if (PyUnicode_CompareWithASCIIString(mode.ptr(), "accumulate") == 0) v.sequential = false;
        else return py::none();
        if (!plain::read_number(alpha.ptr(), 0.0, std::numeric_limits<double>::max(), v.alpha_scalar) ||
            !plain::read_number(gamma.ptr(), 0.0, 1.0, v.gamma_scalar))
          return py::none();
        plain::Args args;
        const bool td0 = v.rule == rl::TdRule::td0;
        if (!args.read_table(Q.ptr(), v.Q) || v.Q.ndim() != (td0 ? 1 : 2) || v.Q.numel() == 0) return py::none();
        if (td0) v.Q.shape.push_back(1), v.Q.strides.push_back(1);  // V [S] as [S, 1]
        if (!args.read(s.ptr(), DType::int64, v.s) || v.s.ndim() != 1 ||
            !args.read_like(s_next.ptr(), DType::int64, v.s, v.s_next) ||
            !args.read_like(r.ptr(), v.Q.dtype, v.s, v.rewards) ||
            !args.read_like(terminated.ptr(), DType::boolean, v.s, v.terminated))
          return py::none();
        if (!args.read_like_if(!td0, a.ptr(), DType::int64, v.s, v.a) ||
            !args.read_like_if(v.rule == rl::TdRule::sarsa, a_next.ptr(), DType::int64, v.s, v.a_next))
          return py::none();
        View td;
        py::object out = args.empty_like(r.ptr(), v.rewards, td);
        rl::check_td_disjoint(v, td);
        {
          py::gil_scoped_release nogil;
          TableLocks locks{v.Q.data};
          rl::cpu::td_update(v, td);
        }
        args.bump_version(Q.ptr());
        return out;
      },
      py::arg("rule"), py::arg("Q"), py::arg("s"), py::arg("a"), py::arg("r"), py::arg("s_next"), py::arg("a_next"),
      py::arg("terminated"), py::arg("alpha"), py::arg("gamma"), py::arg("mode"));

  NIMBLEOPS_BIND_TD(cpu, "cpu")
  NIMBLEOPS_BIND_TRACES(cpu, "cpu")
  NIMBLEOPS_BIND_RETURNS(cpu, "cpu")
#ifdef NIMBLEOPS_WITH_CUDA
  NIMBLEOPS_BIND_TD(cuda, "cuda")
  NIMBLEOPS_BIND_TRACES(cuda, "cuda")
  NIMBLEOPS_BIND_RETURNS(cuda, "cuda")
#endif
}

}  // namespace nimbleops
