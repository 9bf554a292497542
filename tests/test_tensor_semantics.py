"""torch tensors as torch's own ops take them: lazy sign bits, autograd's version counters and
leaves, overlapping in-place buffers, foreign array protocols, arguments that are not numbers."""
from __future__ import annotations

import numpy as np
import pytest

from nimbleops import rl, vision

from .conftest import random_mdp

torch = pytest.importorskip("torch")

F64 = torch.float64


def _neg_view(x):
    """x's values in a tensor whose negative bit is set (memory holds -x)."""
    return torch._neg_view(-x)


def _conj_imag(x):
    """x's values as the imaginary part of a conjugated complex tensor (negative bit set)."""
    z = torch.complex(torch.zeros_like(x), -x)
    return z.conj().imag


def _rollout(rng, T=6, B=3):
    t = lambda a: torch.from_numpy(np.asarray(a))  # noqa: E731
    return dict(rewards=t(rng.normal(size=(T, B))), values=t(rng.normal(size=(T, B))),
                next_values=t(rng.normal(size=(T, B))), log_rhos=t(rng.normal(size=(T, B)) * 0.3),
                terminated=t(rng.random((T, B)) < 0.2), truncated=t(rng.random((T, B)) < 0.1))


def _calls(rng):
    """(name, inputs dict of float tensors, f(inputs) -> a tensor or tuple of tensors)."""
    P, R = random_mdp(rng, 6, 3)
    P, R = torch.from_numpy(P), torch.from_numpy(R)
    V = torch.from_numpy(rng.normal(size=6))
    pol = torch.from_numpy(rng.integers(0, 3, 6))
    ro = _rollout(rng)
    mask = {k: ro[k] for k in ("terminated", "truncated")}
    x = torch.from_numpy(rng.normal(size=(2, 8, 6, 6)))
    boxes = torch.tensor([[0, 0.5, 0.5, 5.0, 4.0], [1, 1.0, 0.0, 6.0, 6.0]], dtype=F64)
    return [
        ("q_values", dict(P=P, R=R, V=V), lambda a: rl.q_values(a["P"], a["R"], a["V"], 0.9)),
        ("bellman_optimality_backup", dict(P=P, R=R, V=V),
         lambda a: rl.bellman_optimality_backup(a["P"], a["R"], a["V"], 0.9)),
        ("bellman_expectation_backup", dict(P=P, R=R, V=V),
         lambda a: rl.bellman_expectation_backup(a["P"], a["R"], a["V"], 0.9, pol)),
        ("greedy_policy", dict(P=P, R=R, V=V), lambda a: rl.greedy_policy(a["P"], a["R"], a["V"], 0.9)),
        ("value_iteration", dict(P=P, R=R), lambda a: rl.value_iteration(a["P"], a["R"], 0.9).V),
        ("policy_evaluation", dict(P=P, R=R), lambda a: rl.policy_evaluation(a["P"], a["R"], 0.9, pol).V),
        ("policy_iteration", dict(P=P, R=R), lambda a: rl.policy_iteration(a["P"], a["R"], 0.9).V),
        ("modified_policy_iteration", dict(P=P, R=R),
         lambda a: rl.modified_policy_iteration(a["P"], a["R"], 0.9).V),
        ("finite_horizon", dict(P=P, R=R), lambda a: rl.finite_horizon(a["P"], a["R"], 0.9, 4).V),
        ("discounted_returns", dict(rewards=ro["rewards"], next_values=ro["next_values"]),
         lambda a: rl.discounted_returns(a["rewards"], a["next_values"], **mask, gamma=0.9)),
        ("n_step_returns", dict(rewards=ro["rewards"], next_values=ro["next_values"]),
         lambda a: rl.n_step_returns(a["rewards"], a["next_values"], **mask, gamma=0.9, n=3)),
        ("lambda_returns", dict(rewards=ro["rewards"], next_values=ro["next_values"]),
         lambda a: rl.lambda_returns(a["rewards"], a["next_values"], **mask, gamma=0.9, lam=0.8)),
        ("gae", dict(rewards=ro["rewards"], values=ro["values"], next_values=ro["next_values"]),
         lambda a: rl.gae(a["rewards"], a["values"], a["next_values"], **mask, gamma=0.9, lam=0.8)),
        ("vtrace", dict(rewards=ro["rewards"], values=ro["values"], next_values=ro["next_values"],
                        log_rhos=ro["log_rhos"]),
         lambda a: rl.vtrace(a["rewards"], a["values"], a["next_values"], a["log_rhos"], **mask, gamma=0.9)),
        ("depthwise_conv2d", dict(x=x, w=torch.from_numpy(rng.normal(size=(8, 1, 3, 3)))),
         lambda a: vision.depthwise_conv2d(a["x"], a["w"], padding=1)),
        ("pointwise_conv2d", dict(x=x, w=torch.from_numpy(rng.normal(size=(4, 8, 1, 1)))),
         lambda a: vision.pointwise_conv2d(a["x"], a["w"])),
        ("channel_shuffle", dict(x=x), lambda a: vision.channel_shuffle(a["x"], 2)),
        ("concat_shuffle_split", dict(a=x, b=x * 2), lambda a: vision.concat_shuffle_split(a["a"], a["b"])),
        ("ps_roi_align", dict(x=x), lambda a: vision.ps_roi_align(a["x"], boxes, 2, sampling_ratio=2)),
        ("ps_roi_pool", dict(x=x), lambda a: vision.ps_roi_pool(a["x"], boxes, 2)),
        ("batch_norm_relu", dict(x=x, w=torch.from_numpy(rng.random(8) + 0.5)),
         lambda a: vision.batch_norm_relu(a["x"], a["w"], torch.zeros(8, dtype=F64))),
    ]


_NAMES = [c[0] for c in _calls(np.random.default_rng(0))]


@pytest.mark.parametrize("lazy", [_neg_view, _conj_imag], ids=["neg_view", "conj_imag"])
@pytest.mark.parametrize("op", _NAMES)
def test_lazily_negated_inputs_read_as_their_values(op, lazy):
    name, inputs, f = next(c for c in _calls(np.random.default_rng(1)) if c[0] == op)
    want = f(inputs)
    for key in inputs:  # each input in turn, and all of them at once
        for lazy_keys in ([key], list(inputs)):
            args = {k: (lazy(v) if k in lazy_keys else v) for k, v in inputs.items()}
            assert any(args[k].is_neg() for k in lazy_keys)
            got = f(args)
            # a conjugated imaginary part is a strided view, which some ops read through another
            # path (last bits); a sign error would be of the values' size
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_lazily_negated_inputs_with_autograd():
    rng = np.random.default_rng(2)
    ro = _rollout(rng)
    r = ro["rewards"].clone().requires_grad_()
    got = rl.gae(_neg_view(r), ro["values"], ro["next_values"], ro["terminated"], ro["truncated"], gamma=0.9,
                 lam=0.8)[0]
    want = rl.gae(r, ro["values"], ro["next_values"], ro["terminated"], ro["truncated"], gamma=0.9, lam=0.8)[0]
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    g_got, = torch.autograd.grad(got.sum(), r)
    g_want, = torch.autograd.grad(want.sum(), r)
    torch.testing.assert_close(g_got, g_want, rtol=0, atol=0)
    x = torch.randn(1, 4, 5, 5, dtype=F64, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, dtype=F64)
    gx, = torch.autograd.grad(vision.depthwise_conv2d(_neg_view(x), w).sum(), x)
    gx_want, = torch.autograd.grad(vision.depthwise_conv2d(x, w).sum(), x)
    torch.testing.assert_close(gx, gx_want, rtol=0, atol=0)


def _transitions(N=4, S=5, A=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(s=rng.integers(0, S, N), a=rng.integers(0, A, N), r=rng.normal(size=N), s_next=rng.integers(0, S, N),
                terminated=rng.random(N) < 0.3)


def test_in_place_tables_with_a_lazy_sign_are_refused():
    t = _transitions()
    Q = _neg_view(torch.zeros(5, 3, dtype=F64))
    with pytest.raises(ValueError, match="^Q: a tensor with its negative or conjugate bit set"):
        rl.q_learning_update_(Q, t["s"], t["a"], t["r"], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    e = _neg_view(torch.zeros(4, 5, dtype=F64))
    with pytest.raises(ValueError, match="^e: a tensor with its negative"):
        rl.td_lambda_step_(torch.zeros(5, dtype=F64), e, t["s"], t["r"], t["s_next"], t["terminated"],
                           np.zeros(4, bool), alpha=0.5, gamma=0.9, lam=0.9)


def test_lazily_negated_transition_arrays_are_read_as_values():
    t = _transitions()
    r = torch.from_numpy(t["r"])
    Q1, Q2 = torch.zeros(5, 3, dtype=F64), torch.zeros(5, 3, dtype=F64)
    d1 = rl.q_learning_update_(Q1, t["s"], t["a"], r, t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    d2 = rl.q_learning_update_(Q2, t["s"], t["a"], _neg_view(r), t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    torch.testing.assert_close(d1, d2, rtol=0, atol=0)
    torch.testing.assert_close(Q1, Q2, rtol=0, atol=0)


def test_in_place_update_of_a_leaf_that_requires_grad_behaves_as_torch():
    t = _transitions()
    Q = torch.zeros(5, 3, dtype=F64, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        Q.add_(1)  # torch's own behaviour, for comparison
    with pytest.raises(RuntimeError, match="^Q: a leaf Variable that requires grad is being used in an in-place"):
        rl.q_learning_update_(Q, t["s"], t["a"], t["r"], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    assert Q.abs().sum() == 0  # nothing written
    with torch.no_grad():  # as an optimizer step would: allowed
        rl.q_learning_update_(Q, t["s"], t["a"], t["r"], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    assert Q.abs().sum() > 0
    nonleaf = torch.zeros(5, dtype=F64, requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="^V: in-place updates are not recorded by autograd"):
        rl.td0_update_(nonleaf, t["s"], t["r"], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)


def test_in_place_updates_bump_the_version_counter():
    """The issue's case: y saved Q for its backward; after the update autograd must refuse, as it
    does after torch's own in-place ops, instead of differentiating with the new values."""
    t = _transitions()
    w = torch.tensor(2.0, dtype=F64, requires_grad=True)
    Q = torch.ones(5, 3, dtype=F64)
    y = (w * Q).sum() * w
    before = Q._version
    rl.q_learning_update_(Q, t["s"], t["a"], t["r"], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    assert Q._version > before
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(y, w)
    V, e = torch.zeros(5, dtype=F64), torch.zeros(4, 5, dtype=F64)
    versions = V._version, e._version
    rl.td_lambda_step_(V, e, t["s"], t["r"], t["s_next"], t["terminated"], np.zeros(4, bool), alpha=0.5, gamma=0.9,
                       lam=0.9)
    assert V._version > versions[0] and e._version > versions[1]
    wl, z, v_old = torch.zeros(3, dtype=F64), torch.zeros(2, 3, dtype=F64), torch.zeros(2, dtype=F64)
    versions = wl._version, z._version, v_old._version
    rl.true_online_td_lambda_step_(wl, z, v_old, np.ones((2, 3)), np.ones(2), np.ones((2, 3)), np.zeros(2, bool),
                                   np.zeros(2, bool), alpha=0.1, gamma=0.9, lam=0.9)
    assert all(x._version > v for x, v in zip((wl, z, v_old), versions))


@pytest.mark.parametrize("use_torch", [False, True])
def test_overlapping_in_place_buffers_are_refused(use_torch):
    t = _transitions(N=2)
    mk = (lambda a: torch.from_numpy(a)) if use_torch else (lambda a: a)
    big = mk(np.zeros((8, 3)))
    with pytest.raises(ValueError, match="^Q1, Q2: expected separate memory"):
        rl.double_q_learning_update_(big[:5], big[3:], t["s"], t["a"], t["r"], t["s_next"], t["terminated"],
                                     alpha=0.5, gamma=0.9, update_first=np.array([True, False]))
    assert not big.any() if not use_torch else not big.any().item()
    V = mk(np.zeros(5))
    with pytest.raises(ValueError, match="^V, e: expected separate memory"):
        rl.td_lambda_step_(V, V[None], t["s"][:1], t["r"][:1], t["s_next"][:1], t["terminated"][:1],
                           np.zeros(1, bool), alpha=0.5, gamma=0.9, lam=0.9)
    # a reward array that is a view of the table
    Q = mk(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="^Q, r: expected separate memory"):
        rl.q_learning_update_(Q, t["s"], t["a"], Q[0, :2], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    buf = mk(np.zeros(6))
    with pytest.raises(ValueError, match="^w, phi: expected separate memory"):
        rl.linear_td_lambda_step_(buf[:3], mk(np.zeros((2, 3))), buf.reshape(2, 3), np.ones(2), np.ones((2, 3)),
                                  np.zeros(2, bool), np.zeros(2, bool), alpha=0.1, gamma=0.9, lam=0.9)


def test_separate_tables_in_one_buffer_are_accepted():
    t = _transitions(N=2)
    big = np.zeros((10, 3))
    rl.double_q_learning_update_(big[:5], big[5:], t["s"], t["a"], t["r"], t["s_next"], t["terminated"], alpha=0.5,
                                 gamma=0.9, update_first=np.array([True, False]))


def test_numpy_array_with_a_negative_stride_on_a_size_one_axis_beside_tensors():
    R = np.zeros((2, 1))[:, ::-1]
    assert R.flags.c_contiguous and R.strides[1] < 0
    got = rl.q_values(torch.ones(2, 1, 2, dtype=F64) / 2, R, torch.zeros(2, dtype=F64), 0.9)
    torch.testing.assert_close(got, torch.zeros(2, 1, dtype=F64))


@pytest.mark.parametrize("bad, error, match", [
    ("0.5", TypeError, "expected a real number, got str"),
    (1j, TypeError, "expected a real number, got complex"),
    (np.array(0.5 + 0j), TypeError, "expected a real number, got complex"),
])
@pytest.mark.parametrize("arg", ["alpha", "gamma"])
def test_numbers_must_be_real_numbers(arg, bad, error, match):
    t = _transitions()
    Q = np.zeros((5, 3))
    kwargs = dict(alpha=0.5, gamma=0.9)
    kwargs[arg] = bad
    with pytest.raises(error, match=f"^{arg}: {match}"):
        rl.q_learning_update_(Q, t["s"], t["a"], t["r"], t["s_next"], t["terminated"], **kwargs)
    with pytest.raises(error, match=f"^{arg}: {match}"):
        rl.td_lambda_step_(np.zeros(5), np.zeros((4, 5)), t["s"], t["r"], t["s_next"], t["terminated"],
                           np.zeros(4, bool), lam=0.9, **kwargs)
    assert not Q.any()


def test_complex_probabilities_are_refused():
    t = _transitions()
    Q = np.zeros((5, 3))
    with pytest.raises(TypeError, match="^probs: expected real numbers, got dtype complex128"):
        rl.expected_sarsa_update_(Q, t["s"], t["a"], t["r"], t["s_next"], t["terminated"], alpha=0.5, gamma=0.9,
                                  probs=np.full((4, 3), 1 / 3 + 0j))


def test_meta_tensors_are_refused_by_name():
    t = _transitions()
    with pytest.raises(ValueError, match="^s: expected a CPU or CUDA tensor, got a tensor on meta"):
        rl.q_learning_update_(np.zeros((5, 3)), torch.zeros(4, dtype=torch.int64, device="meta"), t["a"], t["r"],
                              t["s_next"], t["terminated"], alpha=0.5, gamma=0.9)
    with pytest.raises(ValueError, match="^rewards: expected a CPU or CUDA tensor, got device meta"):
        rl.gae(torch.zeros(3, 2, device="meta"), torch.zeros(3, 2), torch.zeros(3, 2), None, None, gamma=0.9,
               lam=0.9)


def test_arguments_not_differentiated_that_require_grad_are_errors():
    rng = np.random.default_rng(3)
    ro = _rollout(rng)
    gamma = torch.full((6, 3), 0.9, dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match="^gamma: this op is not differentiable with respect to gamma"):
        rl.discounted_returns(ro["rewards"], ro["next_values"], None, None, gamma=gamma)
    with torch.no_grad():
        rl.discounted_returns(ro["rewards"], ro["next_values"], None, None, gamma=gamma)
    rl.discounted_returns(ro["rewards"], ro["next_values"], None, None, gamma=gamma.detach())
    with pytest.raises(ValueError, match="^log_rhos: this op is not differentiable"):
        rl.vtrace(ro["rewards"], ro["values"], ro["next_values"], ro["log_rhos"].requires_grad_(), None, None,
                  gamma=0.9)
    P, R = random_mdp(rng, 4, 2)
    with pytest.raises(ValueError, match="^R: this op is not differentiable"):
        rl.value_iteration(torch.from_numpy(P), torch.from_numpy(R).requires_grad_(), 0.9)


class _DLPackOnly:
    """An array of another library, seen through DLPack only (as a cupy or JAX array would be)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class _CudaArrayInterfaceOnly:
    __cuda_array_interface__ = {"shape": (4, 2), "typestr": "<f8", "data": (0, False), "version": 3}


@pytest.mark.parametrize("make", [lambda a: _DLPackOnly(a), lambda a: _CudaArrayInterfaceOnly()],
                         ids=["dlpack", "cuda_array_interface"])
def test_foreign_arrays_are_refused_naming_the_protocol(make):
    proto = "__dlpack__" if make(np.zeros(1)).__class__ is _DLPackOnly else "__cuda_array_interface__"
    z = np.zeros((4, 2))
    with pytest.raises(TypeError, match=f"^rewards: .*exposes {proto}.*from_dlpack"):
        rl.gae(make(z), z, z, None, None, gamma=0.9, lam=0.9)
    with pytest.raises(TypeError, match=f"^x: .*exposes {proto}"):
        vision.channel_shuffle(make(np.zeros((1, 4, 2, 2))), 2)
    with pytest.raises(TypeError, match=f"^Q: .*exposes {proto}"):
        rl.q_learning_update_(make(np.zeros((5, 3))), [0], [0], [1.0], [1], [False], alpha=0.5, gamma=0.9)
    with pytest.raises(TypeError, match=f"^P: .*exposes {proto}"):
        rl.value_iteration(make(np.ones((2, 1, 2)) / 2), np.zeros((2, 1)), 0.9)


def test_huge_broadcast_views_are_refused_before_copying():
    big = np.broadcast_to(np.float64(1.0), (2**16, 2**16 + 1))  # 32 GiB if copied
    with pytest.raises(ValueError, match=r"^rewards: a broadcast view of 4295032832 elements .* 32 GiB"):
        rl.gae(big, big, big, None, None, gamma=0.9, lam=0.9)
    tb = torch.ones(1, dtype=F64).expand(2**16, 2**16 + 1)
    with pytest.raises(ValueError, match="^rewards: a broadcast view"):
        rl.gae(tb, tb, tb, None, None, gamma=0.9, lam=0.9)
    x = np.broadcast_to(np.float32(1.0), (2**12, 16, 256, 256))
    with pytest.raises(ValueError, match="^x: a broadcast view"):
        vision.depthwise_conv2d(x, np.ones((16, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="^x: a broadcast view"):
        vision.channel_shuffle(x, 2)
    P = np.broadcast_to(np.float64(2.0**-15), (2**15, 4, 2**15))
    with pytest.raises(ValueError, match="^P: a broadcast view"):
        rl.value_iteration(P, np.zeros((2**15, 4)), 0.9)
    small = np.broadcast_to(np.float64(1.0), (6, 3))  # small broadcasts are read as values
    np.testing.assert_allclose(rl.discounted_returns(small, small, None, None, gamma=0.5)[-1], 1.5)


@pytest.mark.parametrize("call, name", [
    (lambda P, R: rl.value_iteration(P, R, 0.9, max_iter=2**63), "max_iter"),
    (lambda P, R: rl.modified_policy_iteration(P, R, 0.9, k=2**63), "k"),
    (lambda P, R: rl.finite_horizon(P, R, 0.9, 2**63), "horizon"),
    (lambda P, R: rl.finite_horizon(P, R, 0.9, 2**60), "horizon"),
    (lambda P, R: rl.policy_iteration(P, R, 0.9, eval_max_iter=-2**70), "eval_max_iter"),
])
def test_integers_beyond_int64_arithmetic_are_errors_naming_them(call, name):
    P, R = random_mdp(np.random.default_rng(0), 3, 2)
    with pytest.raises(ValueError, match=f"^{name}: "):
        call(P, R)
