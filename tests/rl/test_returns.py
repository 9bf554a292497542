"""Return and advantage estimators: golden values (rlax), reference, torchrl, gradients,
torch.compile, invariances, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import rl
from nimbleops.reference import rl as ref

from ..conftest import (import_peer, KINDS, assert_close, assert_same_bits_at_any_thread_count_and_simd_level,
                       compile_backend, to_kind, to_numpy, torch)

# ------------------------------------------------------------------ rlax's hand-checked cases
R_T = np.array([[1.0, 0.0, -1.0, 0.0, 1.0], [0.5, 0.8, -0.7, 0.0, 2.1]])
DISCOUNT_T = np.array([[0.5, 0.9, 1.0, 0.5, 0.8], [0.9, 0.5, 0.3, 0.8, 0.7]])
V_T = np.array([[3.0, 1.0, 5.0, -5.0, 3.0], [-1.7, 1.2, 2.3, 2.2, 2.7]])  # rlax: values at times 1..T
NO_END = np.zeros_like(R_T, dtype=bool)


@pytest.mark.parametrize("kind", KINDS)
def test_rlax_golden_values(kind):
    """rlax/_src/multistep_test.py, batch-major [B, T] (time_dim=1), discounts as per-step gamma."""
    r, v, d, no = (to_kind(x, kind) for x in (R_T, V_T, DISCOUNT_T, NO_END))
    np.testing.assert_allclose(to_numpy(rl.lambda_returns(r, v, no, no, gamma=d, lam=0.75, time_dim=1)),
                               [[1.6460547, 0.72281253, 0.7375001, 0.6500001, 3.4],
                                [0.7866317, 0.9913063, 0.1101501, 2.834, 3.99]], rtol=1e-5)
    discounted = [[1.315, 0.63000005, 0.70000005, 1.7, 3.4], [1.33592, 0.9288, 0.2576, 3.192, 3.9899998]]
    np.testing.assert_allclose(to_numpy(rl.discounted_returns(r, v, no, no, gamma=d, time_dim=1)), discounted, rtol=1e-5)
    expected_n = {3: [[2.8, -3.15, 0.7, 1.7, 3.4], [1.2155, 0.714, 0.2576, 3.192, 3.99]], 5: discounted, 7: discounted}
    for n, want in expected_n.items():
        np.testing.assert_allclose(to_numpy(rl.n_step_returns(r, v, no, no, gamma=d, n=n, time_dim=1)), want, rtol=1e-5)
    # truncated GAE: values at times 0..T, a 0 discount acts as a termination
    rg = np.array([[0.0, 0.0, 1.0, 0.0, -0.5], [0.0, 0.0, 0.0, 0.0, 1.0]])
    vg = np.array([[1.0, 4.0, -3.0, -2.0, -1.0, -1.0], [-3.0, -2.0, -1.0, 0.0, 5.0, -1.0]])
    dg = np.array([[0.99] * 5, [0.9, 0.9, 0.9, 0.0, 0.9]])
    expected = {1.0: [[-1.45118, -4.4557, 2.5396, 0.5249, -0.49], [3.0, 2.0, 1.0, 0.0, -4.9]],
                0.7: [[-0.676979, -5.248167, 2.4846, 0.6704, -0.49], [2.2899, 1.73, 1.0, 0.0, -4.9]],
                0.4: [[0.56731, -6.042, 2.3431, 0.815, -0.49], [1.725, 1.46, 1.0, 0.0, -4.9]]}
    for lam, want in expected.items():
        adv, targets = rl.gae(to_kind(rg, kind), to_kind(vg[:, :-1], kind), to_kind(vg[:, 1:], kind), no, no,
                              gamma=to_kind(dg, kind), lam=lam, time_dim=1)
        np.testing.assert_allclose(to_numpy(adv), want, atol=1e-3)
        np.testing.assert_allclose(to_numpy(targets), np.asarray(want) + vg[:, :-1], atol=1e-3)


# ------------------------------------------------------------------ random rollouts vs reference


@st.composite
def rollouts(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    T = draw(st.integers(1, 7))
    batch = draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    rng = np.random.default_rng(seed)
    shape = (T,) + batch
    p_term, p_trunc = draw(st.sampled_from([0.0, 0.2])), draw(st.sampled_from([0.0, 0.2]))
    terminated = rng.random(shape) < p_term
    truncated = (rng.random(shape) < p_trunc) & ~terminated
    gamma = draw(st.sampled_from(["scalar", "array"]))
    gamma = 0.9 if gamma == "scalar" else rng.uniform(0.5, 1.0, shape)
    return dict(rewards=rng.standard_normal(shape), values=rng.standard_normal(shape),
                next_values=rng.standard_normal(shape), log_rhos=rng.normal(0, 0.7, shape),
                terminated=terminated, truncated=truncated, gamma=gamma,
                lam=draw(st.sampled_from([0.0, 0.5, 0.95, 1.0])), n=draw(st.integers(1, 4)),
                time_dim=draw(st.sampled_from([0, -1])) if batch else 0)


def call(fn_name, d, module, kind, dtype):
    cast = lambda x: to_kind(np.asarray(x).astype(dtype) if np.asarray(x).dtype != bool else np.asarray(x), kind)  # noqa: E731
    td = d["time_dim"]
    move = (lambda x: np.moveaxis(np.asarray(x), 0, -1)) if td == -1 else (lambda x: np.asarray(x))
    arr = {k: move(d[k]) for k in ("rewards", "values", "next_values", "log_rhos", "terminated", "truncated")}
    gamma = d["gamma"] if np.isscalar(d["gamma"]) else move(d["gamma"])
    if module is rl:
        arr = {k: cast(v) for k, v in arr.items()}
        gamma = gamma if np.isscalar(gamma) else cast(gamma)
    common = dict(gamma=gamma, time_dim=td)
    if fn_name == "discounted_returns":
        return module.discounted_returns(arr["rewards"], arr["next_values"], arr["terminated"], arr["truncated"], **common)
    if fn_name == "n_step_returns":
        return module.n_step_returns(arr["rewards"], arr["next_values"], arr["terminated"], arr["truncated"],
                                     n=d["n"], **common)
    if fn_name == "lambda_returns":
        return module.lambda_returns(arr["rewards"], arr["next_values"], arr["terminated"], arr["truncated"],
                                     lam=d["lam"], **common)
    if fn_name == "gae":
        return module.gae(arr["rewards"], arr["values"], arr["next_values"], arr["terminated"], arr["truncated"],
                          lam=d["lam"], **common)
    return module.vtrace(arr["rewards"], arr["values"], arr["next_values"], arr["log_rhos"], arr["terminated"],
                         arr["truncated"], lam=d["lam"], rho_clip=1.0, c_clip=0.9, **common)


ESTIMATORS = ["discounted_returns", "n_step_returns", "lambda_returns", "gae", "vtrace"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fn_name", ESTIMATORS)
@given(d=rollouts())
def test_estimators_match_reference(kind, dtype, fn_name, d):
    got = call(fn_name, d, rl, kind, dtype)
    want = call(fn_name, d, ref, "numpy", "float64")
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert str(g.dtype).endswith(dtype)
        assert_close(g, w, dtype, scale=10)


def test_vtrace_on_policy_is_the_discounted_return():
    """With rho = c = 1 and consistent values, vs is the bootstrapped discounted return."""
    rng = np.random.default_rng(3)
    T, B = 9, 4
    terminated = rng.random((T, B)) < 0.15
    truncated = (rng.random((T, B)) < 0.15) & ~terminated
    v_all = rng.standard_normal((T + 1, B))
    values = v_all[:-1]
    next_values = np.where(truncated, rng.standard_normal((T, B)), v_all[1:])  # final observation at cuts
    r = rng.standard_normal((T, B))
    vs, pg = rl.vtrace(r, values, next_values, np.zeros((T, B)), terminated, truncated, gamma=0.9)
    G = rl.discounted_returns(r, next_values, terminated, truncated, gamma=0.9)
    assert_close(vs, G, "float64")
    boot = np.where(np.arange(T)[:, None] < T - 1, np.vstack([vs[1:], vs[-1:]]), next_values)
    cont = ~(terminated | truncated) & (np.arange(T)[:, None] < T - 1)
    expected_pg = r + 0.9 * ~terminated * np.where(cont, boot, next_values) - values
    assert_close(pg, expected_pg, "float64")


def test_lambda_one_is_discounted_and_lambda_zero_is_one_step(rng):
    T, B = 8, 5
    r, nv = rng.standard_normal((T, B)), rng.standard_normal((T, B))
    term, trunc = rng.random((T, B)) < 0.2, rng.random((T, B)) < 0.2
    assert_close(rl.lambda_returns(r, nv, term, trunc, gamma=0.9, lam=1.0),
                 rl.discounted_returns(r, nv, term, trunc, gamma=0.9), "float64")
    assert_close(rl.lambda_returns(r, nv, term, trunc, gamma=0.9, lam=0.0),
                 rl.n_step_returns(r, nv, term, trunc, gamma=0.9, n=1), "float64")
    assert_close(rl.n_step_returns(r, nv, term, trunc, gamma=0.9, n=T),
                 rl.discounted_returns(r, nv, term, trunc, gamma=0.9), "float64")


# ------------------------------------------------------------------------------- torchrl


def test_agrees_with_torchrl():
    torch = pytest.importorskip("torch")
    F = import_peer("torchrl.objectives.value.functional")
    g = torch.Generator().manual_seed(0)
    B, T = 6, 11  # torchrl's layout: [*B, T, F] with time_dim=-2
    r, v, nv = (torch.randn(B, T, 1, generator=g, dtype=torch.float64) for _ in range(3))
    terminated = torch.rand(B, T, 1, generator=g) < 0.15
    truncated = (torch.rand(B, T, 1, generator=g) < 0.15) & ~terminated
    done = terminated | truncated
    # torchrl forms its discount factors as (int mask) * (python float): float32, even for float64
    # inputs, so agreement is to float32 precision
    tol = dict(rtol=1e-5, atol=1e-6)
    adv, target = F.generalized_advantage_estimate(0.97, 0.9, v, nv, r, done, terminated)
    ours = rl.gae(r, v, nv, terminated, truncated, gamma=0.97, lam=0.9, time_dim=1)
    torch.testing.assert_close(ours[0], adv, **tol)
    torch.testing.assert_close(ours[1], target, **tol)
    vec_adv, _ = F.vec_generalized_advantage_estimate(0.97, 0.9, v, nv, r, done, terminated)
    torch.testing.assert_close(ours[0], vec_adv, **tol)
    lam_ret = F.td_lambda_return_estimate(0.97, 0.9, nv, r, done, terminated)
    torch.testing.assert_close(rl.lambda_returns(r, nv, terminated, truncated, gamma=0.97, lam=0.9, time_dim=1), lam_ret,
                               **tol)


# ------------------------------------------------------------------------------- gradients


def _torch_inputs(torch, T=6, B=3, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    mk = lambda: torch.randn(T, B, generator=g, dtype=torch.float64).to(device).requires_grad_()  # noqa: E731
    r, v, nv = mk(), mk(), mk()
    lr = (0.5 * torch.randn(T, B, generator=g, dtype=torch.float64)).to(device)
    term = (torch.rand(T, B, generator=g) < 0.2).to(device)
    trunc = ((torch.rand(T, B, generator=g) < 0.2).to(device)) & ~term
    gamma = torch.rand(T, B, generator=g, dtype=torch.float64).to(device) * 0.5 + 0.5
    return r, v, nv, lr, term, trunc, gamma


def _estimators(r, v, nv, lr, term, trunc, gamma):
    return {
        "discounted": lambda r, v, nv: rl.discounted_returns(r, nv, term, trunc, gamma=gamma),
        "n_step": lambda r, v, nv: rl.n_step_returns(r, nv, term, trunc, gamma=0.9, n=3),
        "lambda": lambda r, v, nv: rl.lambda_returns(r, nv, term, trunc, gamma=gamma, lam=0.8),
        "gae": lambda r, v, nv: rl.gae(r, v, nv, term, trunc, gamma=0.95, lam=0.9),
        "vtrace": lambda r, v, nv: rl.vtrace(r, v, nv, lr, term, trunc, gamma=gamma, lam=0.9, c_clip=0.8),
    }


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if nimbleops.has_cuda() else []))
@pytest.mark.parametrize("name", ["discounted", "n_step", "lambda", "gae", "vtrace"])
def test_gradcheck(name, device):
    torch = pytest.importorskip("torch")
    r, v, nv, lr, term, trunc, gamma = _torch_inputs(torch, device=device)
    fn = _estimators(r, v, nv, lr, term, trunc, gamma)[name]
    assert torch.autograd.gradcheck(fn, (r, v, nv), atol=1e-8)


def test_gradients_match_autograd_through_the_reference_formula():
    """The adjoint kernels against autograd through a plain-torch scan, same random cotangent."""
    torch = pytest.importorskip("torch")
    r, v, nv, lr, term, trunc, gamma = _torch_inputs(torch, T=7, B=4, seed=1)
    T = r.shape[0]
    cont = (~(term | trunc)).double()
    cont[-1] = 0
    nt = (~term).double()

    def torch_gae():
        out, after = [], torch.zeros_like(r[0])
        for t in reversed(range(T)):
            after = r[t] + 0.95 * nt[t] * nv[t] - v[t] + 0.95 * 0.9 * cont[t] * after
            out.append(after)
        adv = torch.stack(out[::-1])
        return adv, adv + v

    ours = rl.gae(r, v, nv, term, trunc, gamma=0.95, lam=0.9)
    theirs = torch_gae()
    cot = [torch.randn_like(r) for _ in range(2)]
    g_ours = torch.autograd.grad(sum((o * c).sum() for o, c in zip(ours, cot)), (r, v, nv))
    g_theirs = torch.autograd.grad(sum((o * c).sum() for o, c in zip(theirs, cot)), (r, v, nv))
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b)


def test_torch_compile_fullgraph_and_opcheck():
    torch = pytest.importorskip("torch")
    from nimbleops import torch_ops

    r, v, nv, lr, term, trunc, gamma = _torch_inputs(torch, T=5, B=4)

    def loss(r, v, nv):
        adv, target = rl.gae(r, v, nv, term, trunc, gamma=0.99, lam=0.95)
        lam_ret = rl.lambda_returns(r, nv, term, trunc, gamma=gamma, lam=0.9)
        return (adv**2).sum() + target.sum() + lam_ret.sum()

    compiled = torch.compile(loss, fullgraph=True, backend=compile_backend())
    torch.testing.assert_close(compiled(r, v, nv), loss(r, v, nv))
    g1 = torch.autograd.grad(compiled(r, v, nv), (r, v, nv))
    g2 = torch.autograd.grad(loss(r, v, nv), (r, v, nv))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    args = ("gae", r.detach(), v.detach(), nv.detach(), term, trunc, None, 0.99, 0.95, 1, None, 1.0, 1.0)
    torch.library.opcheck(torch_ops.returns_forward, args)
    args = ("vtrace", r.detach(), v.detach(), nv.detach(), term, trunc, gamma, 0.0, 0.9, 1, lr, 1.0, 0.8)
    torch.library.opcheck(torch_ops.returns_forward, args)
    bargs = args + (torch.randn_like(r), torch.randn_like(r))
    torch.library.opcheck(torch_ops.returns_backward, bargs)


# ------------------------------------------------------------------------------ invariances


def test_thread_count_and_simd_level_do_not_change_results(rng):
    T, B = 33, 517
    r, v, nv, lr = (rng.standard_normal((T, B)).astype(np.float32) for _ in range(4))
    term, trunc = rng.random((T, B)) < 0.05, rng.random((T, B)) < 0.05

    def run():
        return (rl.gae(r, v, nv, term, trunc, gamma=0.99, lam=0.95)[0],
                rl.vtrace(r, v, nv, lr, term, trunc, gamma=0.99)[1],
                rl.n_step_returns(r, nv, term, trunc, gamma=0.99, n=5))

    assert_same_bits_at_any_thread_count_and_simd_level(run)


@pytest.mark.parametrize("kind", ["discounted", "lambda", "gae", "n_step"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plain_numpy_calls_and_the_general_path_agree(rng, kind, dtype):
    """Contiguous time-major numpy arrays with number gamma / lam go straight to the kernel; the
    same values through the general path (a strided copy, numpy-scalar gamma, time_dim=-3 on a
    [T, 2, 3] rollout) give the same bits."""
    T = 7
    r, v, nv = (rng.standard_normal((T, 2, 3)).astype(dtype) for _ in range(3))
    term, trunc = rng.random((T, 2, 3)) < 0.2, rng.random((T, 2, 3)) < 0.2
    fns = {
        "discounted": lambda r, v, nv, te, tr, **kw: rl.discounted_returns(r, nv, te, tr, gamma=kw["gamma"],
                                                                           time_dim=kw["time_dim"]),
        "lambda": lambda r, v, nv, te, tr, **kw: rl.lambda_returns(r, nv, te, tr, lam=0.7, **kw),
        "gae": lambda r, v, nv, te, tr, **kw: rl.gae(r, v, nv, te, tr, lam=0.7, **kw)[0],
        "n_step": lambda r, v, nv, te, tr, **kw: rl.n_step_returns(r, nv, te, tr, n=3, **kw),
    }
    plain = fns[kind](r, v, nv, term, trunc, gamma=0.9, time_dim=0)
    strided = lambda x: np.repeat(x, 2, axis=0)[::2]  # noqa: E731 - same values, not contiguous
    general = fns[kind](strided(r), strided(v), strided(nv), strided(term), strided(trunc),
                        gamma=np.float64(0.9), time_dim=-3)
    assert plain.dtype == general.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(plain, general)
    if torch is None:
        return
    # plain CPU tensors outside autograd take the same short path; with a tensor requiring grad,
    # the autograd path; the same bits
    t = [torch.from_numpy(x) for x in (r, v, nv, term, trunc)]
    np.testing.assert_array_equal(fns[kind](*t, gamma=0.9, time_dim=0).numpy(), plain)
    t[0].requires_grad_(True)
    np.testing.assert_array_equal(fns[kind](*t, gamma=0.9, time_dim=0).detach().numpy(), plain)


def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(rng):
    """``_C.rl.returns_plain`` (one binding call reading the arrays in C++) runs exactly the calls
    its contract names and answers None for every other, which the general path then serves."""
    from nimbleops import _C

    plain = _C.rl.returns_plain
    r, v, nv = (rng.standard_normal((5, 2, 3)) for _ in range(3))
    te, tr = rng.random((5, 2, 3)) < 0.3, rng.random((5, 2, 3)) < 0.3
    args = dict(estimator="gae", rewards=r, values=v, next_values=nv, terminated=te, truncated=tr, gamma=0.9,
                lam=0.8, n=1, time_dim=0)
    want = rl.gae(np.repeat(r, 2, 0)[::2], v, nv, te, tr, gamma=np.float64(0.9), lam=0.8)  # the general path
    got = plain(**args)
    for a, b in zip(got, want):
        assert type(a) is np.ndarray and a.dtype == np.float64 and a.shape == (5, 2, 3)
        np.testing.assert_array_equal(a, b)
    assert plain(**{**args, "estimator": "n_step", "values": None, "n": 2})[1] is None
    unaligned = np.frombuffer(bytearray(r.nbytes + 1), np.uint8)[1:].view(np.float64).reshape(r.shape)
    unaligned[...] = r
    declined = [
        {"rewards": r.astype(np.float32)},  # dtypes differ
        {"rewards": np.asfortranarray(r)},  # not C-contiguous
        {"rewards": r.astype(">f8")},  # byte-swapped
        {"rewards": unaligned},
        {"rewards": r.astype(np.float16)},
        {"rewards": r[:0], "values": v[:0], "next_values": nv[:0], "terminated": te[:0], "truncated": tr[:0]},
        {"rewards": np.float64(1.0)},
        {"rewards": r.tolist()},
        {"values": v[:, :1]},  # shapes differ
        {"values": None},  # gae needs values
        {"terminated": te.astype(np.uint8)},
        {"truncated": None},
        {"gamma": True}, {"gamma": 1.5}, {"gamma": float("nan")}, {"gamma": np.float64(0.9)}, {"lam": -0.1},
        {"n": 0}, {"n": 2.0}, {"n": True}, {"n": 2 ** 62 + 1}, {"n": 2 ** 70},
        {"time_dim": 1}, {"time_dim": -3}, {"time_dim": 0.0},
        {"estimator": "n_step"},  # values given to an estimator without them
    ]
    for change in declined:
        assert plain(**{**args, **change}) is None, change
    with pytest.raises(ValueError, match="estimator"):
        plain(**{**args, "estimator": "vtrace"})
    with pytest.raises(ValueError, match="finite"):  # the kernel's own check: nothing is returned
        plain(**{**args, "rewards": np.where(te, np.nan, r)})
    if torch is None:
        return
    t = {k: torch.from_numpy(x) for k, x in dict(rewards=r, values=v, next_values=nv, terminated=te,
                                                   truncated=tr).items()}
    for a, b in zip(plain(**{**args, **t}), want):
        assert type(a) is torch.Tensor and a.dtype == torch.float64 and a.is_contiguous()
        np.testing.assert_array_equal(a.numpy(), b)
    param = {**t, "values": torch.nn.Parameter(t["values"].clone())}
    assert plain(**{**args, **param}) is None  # autograd would record it
    with torch.no_grad():
        assert plain(**{**args, **param}) is not None
    declined = [
        {"values": v},  # kinds differ
        {"rewards": t["rewards"].float()},
        {"rewards": t["rewards"].transpose(1, 2).contiguous().transpose(1, 2)},
        {"rewards": torch._neg_view(t["rewards"].neg())},
        {"rewards": t["rewards"].as_subclass(type("Sub", (torch.Tensor,), {}))},
        {"next_values": t["next_values"].to("meta")},
    ]
    for change in declined:
        assert plain(**{**args, **t, **change}) is None, change
    seen = []
    torch.vmap(lambda x: seen.append(plain(**{**args, **t, "rewards": x})) or x)(t["rewards"][None])
    assert seen == [None]  # a transform's tensors have no memory to read
    torch.jit.trace(lambda x: seen.append(plain(**{**args, **t, "rewards": x})) or x * 1, t["rewards"],
                    check_trace=False)
    assert seen == [None, None]  # the tracer records ops, and the kernel is none of them


@pytest.mark.parametrize("time_dim", [0, 1])
def test_plain_cpu_tensors_outside_the_short_path_agree(rng, time_dim):
    """vtrace, per-step gamma arrays and other time axes: plain CPU tensors outside autograd run the
    numpy path on their memory; with a tensor requiring grad, the autograd path; the same bits."""
    if torch is None:
        pytest.skip("torch is not installed")
    shape = (6, 5) if time_dim == 0 else (5, 6)
    r, v, nv, lr = (rng.standard_normal(shape) for _ in range(4))
    term, trunc, g = rng.random(shape) < 0.2, rng.random(shape) < 0.2, rng.uniform(0.8, 1.0, shape)
    calls = (lambda r, v, nv, lr, te, tr, g: rl.vtrace(r, v, nv, lr, te, tr, gamma=0.9, time_dim=time_dim),
             lambda r, v, nv, lr, te, tr, g: rl.gae(r, v, nv, te, tr, gamma=g, lam=0.8, time_dim=time_dim))
    for call in calls:
        want = call(r, v, nv, lr, term, trunc, g)
        t = [torch.from_numpy(x) for x in (r, v, nv, lr, term, trunc, g)]
        plain = call(*t)
        t[0].requires_grad_(True)
        graph = call(*t)
        for out, w in ((plain, want), (graph, want)):
            for a, b in zip(out, w):
                assert isinstance(a, torch.Tensor)
                np.testing.assert_array_equal(a.detach().numpy(), b)


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kind", ["discounted", "lambda", "gae", "n_step", "vtrace"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (-1, -1), (2, 1500)])
def test_nonfinite_rewards_raise_for_every_estimator(rng, kind, value, where):
    """The CPU kernels check the rewards in their own pass: wherever the bad one lies (first or
    last step, any column block), the call raises."""
    T, B = 5, 3000  # several column blocks
    r, v, nv, lr = (rng.standard_normal((T, B)) for _ in range(4))
    no = np.zeros((T, B), bool)
    r[where] = value
    calls = {
        "discounted": lambda: rl.discounted_returns(r, nv, no, no, gamma=0.9),
        "lambda": lambda: rl.lambda_returns(r, nv, no, no, gamma=0.9, lam=0.8),
        "gae": lambda: rl.gae(r, v, nv, no, no, gamma=0.9, lam=0.8),
        "n_step": lambda: rl.n_step_returns(r, nv, no, no, gamma=0.9, n=3),
        "vtrace": lambda: rl.vtrace(r, v, nv, lr, no, no, gamma=0.9),
    }
    with pytest.raises(ValueError, match="rewards: expected finite rewards, found nan or inf"):
        calls[kind]()
    r[where] = 1.0
    calls[kind]()  # and the same call with finite rewards runs


def _with_nan(x):
    y = x.copy()
    y[1, 1] = np.nan
    return y


NO = np.zeros((4, 3), bool)  # no episode end in a [4, 3] rollout

# (case, call(r, v, nv [4, 3]), exception, message)
BAD_INPUT = [
    ("next_values shape", lambda r, v, nv: rl.gae(r, v, nv[:3], NO, NO, gamma=0.9, lam=0.9),
     ValueError, r"next_values: expected shape \[4, 3\] like rewards"),
    ("float mask", lambda r, v, nv: rl.gae(r, v, nv, NO.astype(float), NO, gamma=0.9, lam=0.9),
     TypeError, "terminated: expected a bool mask, got dtype float64"),
    ("nan reward", lambda r, v, nv: rl.gae(_with_nan(r), v, nv, NO, NO, gamma=0.9, lam=0.9),
     ValueError, "rewards: expected finite rewards"),
    ("complex rewards", lambda r, v, nv: rl.discounted_returns(r.astype(complex), nv, NO, NO, gamma=0.9),
     TypeError, "rewards: expected a real-valued array"),
    ("gamma above 1", lambda r, v, nv: rl.gae(r, v, nv, NO, NO, gamma=1.5, lam=0.9), ValueError, "gamma"),
    ("negative gamma array", lambda r, v, nv: rl.gae(r, v, nv, NO, NO, gamma=np.full((4, 3), -0.1), lam=0.9),
     ValueError, "gamma: expected discounts in"),
    ("gamma not broadcastable", lambda r, v, nv: rl.gae(r, v, nv, NO, NO, gamma=np.ones(5), lam=0.9),
     ValueError, "gamma: expected a number or an array broadcastable"),
    ("negative lam", lambda r, v, nv: rl.gae(r, v, nv, NO, NO, gamma=0.9, lam=-1), ValueError, "lam"),
    ("n 0", lambda r, v, nv: rl.n_step_returns(r, nv, NO, NO, gamma=0.9, n=0),
     ValueError, "n: expected an integer >= 1"),
    ("time_dim", lambda r, v, nv: rl.gae(r, v, nv, NO, NO, gamma=0.9, lam=0.9, time_dim=2), ValueError, "time_dim"),
    ("no values", lambda r, v, nv: rl.gae(r, None, nv, NO, NO, gamma=0.9, lam=0.9),
     TypeError, "values: expected an array"),
    ("no log_rhos", lambda r, v, nv: rl.vtrace(r, v, nv, None, NO, NO, gamma=0.9),
     TypeError, "log_rhos: expected an array"),
    ("rho_clip 0", lambda r, v, nv: rl.vtrace(r, v, nv, r, NO, NO, gamma=0.9, rho_clip=0), ValueError, "rho_clip"),
]


@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_errors(call, exc, match):
    rng = np.random.default_rng(1234)
    with pytest.raises(exc, match=match):
        call(*(rng.standard_normal((4, 3)) for _ in range(3)))


def test_masks_default_to_no_episode_end_and_empty_rollouts_work(rng):
    r, nv = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    no = np.zeros((5, 2), bool)
    assert_close(rl.discounted_returns(r, nv, None, None, gamma=0.9), rl.discounted_returns(r, nv, no, no, gamma=0.9),
                 "float64")
    out = rl.gae(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), None, None, gamma=0.9, lam=0.9)
    assert out[0].shape == (0, 3)
    assert rl.discounted_returns(np.ones(4), np.zeros(4), None, None, gamma=0.5).shape == (4,)
