"""``python -m nimbleops.bench``: nimbleops against the reference and the peers installed.

Prints one markdown table: each workload, nimbleops' median time, its achieved bandwidth against
the machine's read and copy bandwidth (measured first, in the same run), and every peer found
installed with its time and the ratio (peer time / ours; > 1 means nimbleops is faster).

The workloads are also the pytest-benchmark groups of ``bench/`` (``pytest bench
--benchmark-only``), built by :func:`workloads`.

By default it runs a quick tour, one workload per op family against its main peer; ``--full`` runs
the whole table, ``--only FAMILY[,FAMILY]`` some families, ``--json PATH`` writes the results and
``--plot PATH`` draws the speed-ups (matplotlib). Every figure comes with its interquartile range
over the rounds of alternation, and the table warns where the machine was too noisy for a ratio to
mean anything.

torch and every peer are imported inside the workloads that use them: each is optional.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

import nimbleops
from nimbleops import rl
from nimbleops.reference import rl as ref


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def importable(module: str) -> bool:
    """Installed and importable (PyPI's torchvision, for one, fails to import beside some torch builds)."""
    if not installed(module):
        return False
    try:
        importlib.import_module(module)
        return True
    except Exception:  # noqa: BLE001 - any import failure means: not a usable peer
        return False


@dataclass
class Workload:
    """One comparison: `ours` and each peer compute the same thing on the same data."""

    group: str
    name: str
    ours: Callable[[], object]
    peers: Dict[str, Callable[[], object]] = field(default_factory=dict)
    bytes_moved: int = 0  # bytes a sweep must read (for GB/s); 0 = not a bandwidth-bound op
    note: str = ""
    versus: str = "read"  # which measured bandwidth the GB/s column compares with: "read" or "copy"
    flops: int = 0  # floating-point operations of one call (for GFLOP/s); 0 = not reported
    family: str = ""  # the op family (a key of FAMILIES); by default the group's
    calls: int = 1  # calls of the op each function makes (the times shown are per call)

    def __post_init__(self):
        self.family = self.family or _GROUP_FAMILY[self.group]


@dataclass
class Timing:
    """Seconds per call of one function: the median over every call, the median of each block of
    calls (one block per round of alternation), and the interquartile range of those blocks."""

    median: float
    blocks: List[float]
    samples: List[float]

    @property
    def iqr(self) -> float:
        q1, q3 = _quartiles(self.blocks)
        return q3 - q1

    @property
    def quantised(self) -> bool:
        """Most calls took a whole number of milliseconds (1 ms or more): the figure then measures
        the scheduler's time slices of a loaded machine, not the function."""
        long = [t for t in self.samples if t >= 1e-3]
        if len(long) < max(3, len(self.samples) // 2):
            return False
        whole = sum(abs(t * 1e3 - round(t * 1e3)) < 0.02 for t in long)  # within 20 us of a whole ms
        return whole > len(long) / 2


def _quartiles(xs: List[float]):
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]


def measure(fns: List[Callable[[], object]], min_time: float = 0.3, rounds: int = 3,
            settle: float = 0.25) -> List[Timing]:
    """Times of each function, measured in alternating blocks (a a a, b b b, a a a, ...), so that the
    slow drifts of a shared machine hit all of them alike.

    Each block starts with a warm-up call and a pause of `settle` seconds: thread pools of the
    other libraries (OpenBLAS' idle workers spin for about 0.1 s after each call) must not steal
    this function's cores. A block lasts about min_time / rounds."""
    block = [max(3, min(200, int(min_time / rounds / max(_once(fn), 1e-7)))) for fn in fns]
    samples: List[List[float]] = [[] for _ in fns]
    blocks: List[List[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, n, ts, bs in zip(fns, block, samples, blocks):
            time.sleep(settle)
            fn()
            these = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                these.append(time.perf_counter() - t0)
            ts += these
            bs.append(statistics.median(these))
    return [Timing(statistics.median(ts), bs, ts) for ts, bs in zip(samples, blocks)]


def median_time(fn: Callable[[], object], min_time: float = 0.3, rounds: int = 3) -> float:
    """Median seconds per call (see :func:`measure`)."""
    return measure([fn], min_time, rounds)[0].median


def _once(fn: Callable[[], object]) -> float:
    fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def memory_bandwidth(nbytes: int = 256 * 2**20) -> Dict[str, float]:
    """GB/s of numpy's copy (read + write bytes counted) and of a BLAS GEMV (pure read), same run."""
    a = np.random.default_rng(0).random(nbytes // 8)
    b = np.empty_like(a)
    copy = 2 * a.nbytes / median_time(lambda: np.copyto(b, a)) / 1e9
    m = a.reshape(4096, -1)
    ones = np.ones(m.shape[1])
    read = a.nbytes / median_time(lambda: m @ ones) / 1e9
    return {"copy": copy, "read": read}


# ---------------------------------------------------------------------------------- workloads


def random_dense_mdp(S: int, A: int, batch=(), dtype="float64", seed: int = 0):
    rng = np.random.default_rng(seed)
    P = rng.random(batch + (S, A, S))
    P /= P.sum(-1, keepdims=True)
    R = rng.standard_normal(batch + (S, A))
    return P.astype(dtype), R.astype(dtype)


def gridworld(n: int, dtype="float64"):
    """n x n grid, actions N/S/W/E: the intended move w.p. 0.7, each perpendicular move 0.1, stay
    0.1 (walls keep you in place); reward -1 per step; the corner (n-1, n-1) is the goal.
    Returns (SparseTransitions, R [S, 4], scipy CSR [S*4, S])."""
    import scipy.sparse as sp

    S, A = n * n, 4
    s = np.arange(S)
    r, c = s // n, s % n
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    rows, cols, vals = [], [], []
    for a, (dr, dc) in enumerate(moves):
        outcomes = [((dr, dc), 0.7)] + [(m, 0.1) for m in moves if m not in ((dr, dc), (-dr, -dc))] + [((0, 0), 0.1)]
        for (er, ec), p in outcomes:
            nr, nc = np.clip(r + er, 0, n - 1), np.clip(c + ec, 0, n - 1)
            rows.append(s * A + a)
            cols.append(nr * n + nc)
            vals.append(np.full(S, p))
    rows, cols, vals = map(np.concatenate, (rows, cols, vals))
    goal = S - 1  # absorbing with reward 0 (rows sum to 1, as QuantEcon requires), so V(goal) = 0
    keep = rows // A != goal
    rows = np.concatenate([rows[keep], goal * A + np.arange(A)])
    cols = np.concatenate([cols[keep], np.full(A, goal)])
    vals = np.concatenate([vals[keep], np.ones(A)])
    M = sp.csr_matrix((vals, (rows, cols)), shape=(S * A, S), dtype=dtype)
    M.sum_duplicates()
    R = -np.ones((S, A), dtype=dtype)
    R[goal] = 0
    return rl.SparseTransitions.from_scipy(M, A), R, M


def _numpy_sweep(P2, R1, gamma, S, A):
    """The strongest plain-numpy sweep: one GEMV over all state-action rows, then max/argmax."""

    def run(V):
        Q = (R1 + gamma * (P2 @ V)).reshape(S, A)
        return Q.max(1), Q.argmax(1)

    return run


def _numpy_vi(sweep, S, gamma, tol):
    """Value iteration in plain numpy around `sweep`, with the sup-norm rule."""
    threshold = tol * (1 - gamma) / (2 * gamma)

    def run():
        V = np.zeros(S)
        for _ in range(100_000):
            V_new, pol = sweep(V)
            done = np.abs(V_new - V).max() < threshold
            V = V_new
            if done:
                return V, pol

    return run


GAMMA, TOL = 0.95, 1e-6


def dense_workloads() -> List[Workload]:
    """(a) dense S=1000, A=8: one sweep (float64, float32) and full solves."""
    S, A = 1000, 8
    out = []
    for dtype in ("float64", "float32"):
        P, R = random_dense_mdp(S, A, dtype=dtype)
        V = np.random.default_rng(1).standard_normal(S).astype(dtype)
        sweep = _numpy_sweep(P.reshape(S * A, S), R.reshape(-1), GAMMA, S, A)
        peers = {"numpy GEMV + max/argmax": lambda sweep=sweep, V=V: sweep(V)}  # bound now, not late
        if importable("mdptoolbox") and dtype == "float64":
            import mdptoolbox.mdp

            vi = mdptoolbox.mdp.ValueIteration(np.ascontiguousarray(P.transpose(1, 0, 2)), R, GAMMA)
            vi.V = V.copy()
            peers["pymdptoolbox (one iteration)"] = vi._bellmanOperator
        ours = lambda P=P, R=R, V=V: rl.bellman_optimality_backup(P, R, V, GAMMA, check=False)  # noqa: E731
        out.append(Workload("a-dense-sweep", f"(a) dense S={S} A={A} {dtype}: one sweep", ours, peers, P.nbytes))
        if dtype == "float64":
            out.append(_default_check_workload("a-dense-sweep", f"(a) dense S={S} A={A} {dtype}", P, R, V,
                                               {"numpy GEMV + max/argmax": peers["numpy GEMV + max/argmax"]}))
            out.append(Workload("a-dense-sweep", f"(a) dense S={S} A={A} {dtype}: one sweep, SIMD forced to baseline",
                                _with_simd("baseline", ours),
                                {f"runtime dispatch ({nimbleops.build_info()['simd_detected']})": ours}, P.nbytes,
                                note="peer / ours < 1: dispatch pays"))
            out += dense_solver_workloads(P, R)
    return out


def _with_simd(level: str, fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        nimbleops.set_simd_level(level)
        try:
            return fn()
        finally:
            nimbleops.set_simd_level("auto")

    return run


def dense_solver_workloads(P, R) -> List[Workload]:
    S, A = R.shape
    name = f"(a) dense S={S} A={A} float64"
    sweep = _numpy_sweep(P.reshape(S * A, S), R.reshape(-1), GAMMA, S, A)
    vi_peers = {"numpy loop (GEMV form)": _numpy_vi(sweep, S, GAMMA, TOL)}
    pi_peers, mpi_peers, span_peers = {}, {}, {}
    if importable("quantecon"):
        import quantecon as qe

        ddp = qe.markov.DiscreteDP(R, P, GAMMA)
        # (QuantEcon stops at max_iter=250 by default, before VI has converged here)
        vi_peers["QuantEcon DiscreteDP VI"] = lambda: ddp.solve("value_iteration", epsilon=TOL, max_iter=100_000)
        pi_peers["QuantEcon DiscreteDP PI (exact solve)"] = lambda: ddp.solve("policy_iteration", max_iter=100_000)
        mpi_peers["QuantEcon DiscreteDP MPI"] = lambda: ddp.solve("modified_policy_iteration", epsilon=TOL,
                                                                  max_iter=100_000)
    if importable("mdptoolbox"):
        import mdptoolbox.mdp

        P_asa = np.ascontiguousarray(P.transpose(1, 0, 2))
        span_peers["pymdptoolbox ValueIteration"] = lambda: mdptoolbox.mdp.ValueIteration(
            P_asa, R, GAMMA, epsilon=TOL, max_iter=100_000).run()
        mpi_peers["pymdptoolbox PolicyIterationModified"] = lambda: mdptoolbox.mdp.PolicyIterationModified(
            P_asa, R, GAMMA, epsilon=TOL, max_iter=100_000).run()
    return [
        Workload("a-dense-solve", f"{name}: value iteration to tol={TOL}",
                 lambda: rl.value_iteration(P, R, GAMMA, tol=TOL), vi_peers),
        Workload("a-dense-solve", f"{name}: value iteration to tol={TOL}, span rule",
                 lambda: rl.value_iteration(P, R, GAMMA, tol=TOL, stop="span"), span_peers),
        Workload("a-dense-solve", f"{name}: policy iteration", lambda: rl.policy_iteration(P, R, GAMMA), pi_peers),
        Workload("a-dense-solve", f"{name}: modified policy iteration k=20",
                 lambda: rl.modified_policy_iteration(P, R, GAMMA, tol=TOL), mpi_peers),
    ]


def batched_workloads() -> List[Workload]:
    """(b) 1024 MDPs of S=16, A=4, one sweep."""
    B, S, A = 1024, 16, 4
    P, R = random_dense_mdp(S, A, (B,))
    V = np.random.default_rng(2).standard_normal((B, S))

    def einsum_sweep():
        Q = R + GAMMA * np.einsum("bsat,bt->bsa", P, V)
        return Q.max(-1), Q.argmax(-1)

    def matmul_sweep():
        Q = R + GAMMA * (P.reshape(B, S * A, S) @ V[..., None]).reshape(B, S, A)
        return Q.max(-1), Q.argmax(-1)

    return [Workload("b-batched-sweep", f"(b) {B} MDPs S={S} A={A} float64: one sweep",
                     lambda: rl.bellman_optimality_backup(P, R, V, GAMMA, check=False),
                     {"numpy einsum": einsum_sweep, "numpy matmul": matmul_sweep}, P.nbytes),
            _default_check_workload("b-batched-sweep", f"(b) {B} MDPs S={S} A={A} float64", P, R, V,
                                    {"numpy einsum": einsum_sweep})]


def _default_check_workload(group: str, name: str, P, R, V, numpy_peers) -> Workload:
    """One sweep with the default check (P validated inside the sweep) against the same sweep with
    check=False (peer / ours below 1 is what the check costs) and numpy."""
    return Workload(group, f"{name}: one sweep, default check=True",
                    lambda: rl.bellman_optimality_backup(P, R, V, GAMMA),
                    {"check=False": lambda: rl.bellman_optimality_backup(P, R, V, GAMMA, check=False), **numpy_peers},
                    P.nbytes, note="peer / ours for check=False: 1 / what the check costs")


def sparse_workloads(quick: bool) -> List[Workload]:
    """(c) sparse gridworld: one sweep and full VI."""
    n = 200 if quick else 500
    P, R, M = gridworld(n)
    S, A = n * n, 4
    V = np.random.default_rng(3).standard_normal(S)
    sweep = _numpy_sweep(M, R.reshape(-1), GAMMA, S, A)
    sweep_bytes = P.indptr.nbytes + P.indices.nbytes + P.data.nbytes + R.nbytes
    name = f"(c) sparse gridworld S={S:,} A={A} ({P.nnz / (S * A):.1f} successors)"
    vi_peers = {"scipy.sparse loop": _numpy_vi(sweep, S, GAMMA, TOL)}
    if importable("quantecon"):
        import quantecon as qe

        ddp = qe.markov.DiscreteDP(R.reshape(-1), M, GAMMA, np.repeat(np.arange(S), A), np.tile(np.arange(A), S))
        vi_peers["QuantEcon DiscreteDP VI (sparse)"] = lambda: ddp.solve("value_iteration", epsilon=TOL,
                                                                         max_iter=100_000)
    return [
        Workload("c-sparse-sweep", f"{name}: one sweep", lambda: rl.bellman_optimality_backup(P, R, V, GAMMA),
                 {"scipy.sparse matvec + max/argmax": lambda: sweep(V)}, sweep_bytes),
        Workload("c-sparse-solve", f"{name}: value iteration to tol={TOL}", lambda: rl.value_iteration(P, R, GAMMA, tol=TOL),
                 vi_peers),
    ]


def large_sparse_workloads() -> List[Workload]:
    """(d) the 4-million-state gridworld (2000 x 2000, 4 actions, about 4 successors): one sweep
    against scipy.sparse; its full solves against scipy.sparse and QuantEcon, with their memory, are
    examples/large_gridworld.py (minutes each, too long for this table's repeated rounds)."""
    n = 2000
    P, R, M = gridworld(n)
    S, A = n * n, 4
    V = np.random.default_rng(4).standard_normal(S)
    sweep = _numpy_sweep(M, R.reshape(-1), GAMMA, S, A)
    read = P.indptr.nbytes + P.indices.nbytes + P.data.nbytes + R.nbytes + V.nbytes
    name = f"(d) sparse gridworld S={S:,} A={A} ({P.nnz / (S * A):.1f} successors, {read / 1e9:.2f} GB read a sweep)"
    return [Workload("d-large-sparse-sweep", f"{name}: one sweep",
                     lambda: rl.bellman_optimality_backup(P, R, V, GAMMA, check=False),
                     {"scipy.sparse matvec + max/argmax": lambda: sweep(V)}, read)]


def reference_workloads() -> List[Workload]:
    P, R = random_dense_mdp(30, 4)
    V = np.zeros(30)
    return [Workload("reference", "small dense S=30 A=4: one sweep (vs the pure-Python reference)",
                     lambda: rl.bellman_optimality_backup(P, R, V, GAMMA),
                     {"nimbleops.reference": lambda: ref.bellman_optimality_backup(P, R, V, GAMMA)},
                     family="bellman")]


def rollout(T: int, B: int, dtype="float32", seed: int = 0):
    """A PPO-style rollout [T, B]: rewards, values, next values, terminations and truncations."""
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.standard_normal((T, B)).astype(dtype) for _ in range(3))
    terminated = rng.random((T, B)) < 0.01
    truncated = (rng.random((T, B)) < 0.005) & ~terminated
    return r, v, nv, terminated, truncated


def numpy_gae_loop(r, v, nv, terminated, truncated, gamma, lam):
    """The NumPy reverse loop of Stable-Baselines3's RolloutBuffer, in this library's convention."""
    not_terminated = 1.0 - terminated.astype(r.dtype)
    not_done = 1.0 - (terminated | truncated).astype(r.dtype)
    adv = np.empty_like(r)
    last = np.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        delta = r[t] + gamma * nv[t] * not_terminated[t] - v[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + v


def numpy_lambda_loop(r, nv, terminated, truncated, gamma, lam):
    not_terminated = 1.0 - terminated.astype(r.dtype)
    done = terminated | truncated
    out = np.empty_like(r)
    g = nv[-1] * not_terminated[-1]
    for t in reversed(range(r.shape[0])):
        boot = nv[t] * not_terminated[t]
        g = np.where(done[t], boot, g)
        g = out[t] = r[t] + gamma * ((1 - lam) * boot + lam * g)
    return out


def returns_workloads() -> List[Workload]:
    """GAE and lambda-returns on a PPO rollout T=128, B=1024, float32."""
    T, B, gamma, lam = 128, 1024, 0.99, 0.95
    r, v, nv, term, trunc = rollout(T, B)
    nbytes = 5 * r.nbytes + term.nbytes + trunc.nbytes  # r, v, nv in; two outputs; two masks
    gae_peers = {"numpy loop (Stable-Baselines3)": lambda: numpy_gae_loop(r, v, nv, term, trunc, gamma, lam)}
    lam_peers = {"numpy loop": lambda: numpy_lambda_loop(r, nv, term, trunc, gamma, lam)}
    if importable("torchrl"):
        import torch
        from torchrl.objectives.value import functional as F

        # torchrl's own layout [B, T, 1]
        tr, tv, tnv = (torch.from_numpy(np.ascontiguousarray(x.T))[..., None] for x in (r, v, nv))
        tterm = torch.from_numpy(np.ascontiguousarray(term.T))[..., None]
        tdone = torch.from_numpy(np.ascontiguousarray((term | trunc).T))[..., None]
        gae_peers["torchrl generalized_advantage_estimate"] = lambda: F.generalized_advantage_estimate(
            gamma, lam, tv, tnv, tr, tdone, tterm)
        gae_peers["torchrl vec_generalized_advantage_estimate"] = lambda: F.vec_generalized_advantage_estimate(
            gamma, lam, tv, tnv, tr, tdone, tterm)
        lam_peers["torchrl td_lambda_return_estimate"] = lambda: F.td_lambda_return_estimate(
            gamma, lam, tnv, tr, tdone, tterm)
        lam_peers["torchrl vec_td_lambda_return_estimate"] = lambda: F.vec_td_lambda_return_estimate(
            gamma, lam, tnv, tr, tdone, tterm)
    rs, vs, nvs, terms, truncs = (x[:, :16] for x in (r, v, nv, term, trunc))
    return [
        Workload("gae", f"GAE T={T} B={B} float32", lambda: rl.gae(r, v, nv, term, trunc, gamma=gamma, lam=lam),
                 gae_peers, nbytes, note="GB/s: bytes read and written"),
        Workload("lambda-returns", f"lambda-returns T={T} B={B} float32",
                 lambda: rl.lambda_returns(r, nv, term, trunc, gamma=gamma, lam=lam), lam_peers,
                 4 * r.nbytes + term.nbytes + trunc.nbytes),
        Workload("reference", f"GAE T={T} B=16 float32 (vs the pure-Python reference)",
                 lambda: rl.gae(rs, vs, nvs, terms, truncs, gamma=gamma, lam=lam),
                 {"nimbleops.reference": lambda: ref.gae(rs, vs, nvs, terms, truncs, gamma=gamma, lam=lam)},
                 family="returns"),
    ]


def td_workloads() -> List[Workload]:
    """q_learning_update_: 65,536 transitions on a 100,000 x 8 float32 table, both modes."""
    S, A, N, alpha, gamma = 100_000, 8, 65_536, 0.1, 0.99
    rng = np.random.default_rng(5)
    s, a, s_next = rng.integers(0, S, N), rng.integers(0, A, N), rng.integers(0, S, N)
    r = rng.standard_normal(N).astype(np.float32)
    terminated = rng.random(N) < 0.05
    Q_ours, Q_numpy = (rng.standard_normal((S, A)).astype(np.float32) for _ in range(2))
    not_terminated = (~terminated).astype(np.float32)

    def numpy_update():
        """The plain numpy batch Q-learning update, with numpy.add.at for repeated (s, a)."""
        td = r + np.float32(gamma) * not_terminated * Q_numpy[s_next].max(1) - Q_numpy[s, a]
        np.add.at(Q_numpy, (s, a), np.float32(alpha) * td)
        return td

    increments = (alpha * rng.standard_normal(N)).astype(np.float32)
    peers = {"numpy batch update (numpy.add.at)": numpy_update,
             "numpy.add.at alone (the increments only)": lambda: np.add.at(Q_numpy, (s, a), increments)}
    out = [Workload("td-q-learning", f"q_learning_update_ N={N:,} on {S:,} x {A} float32, mode={mode}",
                    lambda mode=mode: rl.q_learning_update_(Q_ours, s, a, r, s_next, terminated, alpha=alpha,
                                                             gamma=gamma, mode=mode), peers)
           for mode in ("accumulate", "sequential")]
    Qs = rng.standard_normal((50, 4))
    ss, aa, sn = rng.integers(0, 50, 512), rng.integers(0, 4, 512), rng.integers(0, 50, 512)
    rr, tt = rng.standard_normal(512), rng.random(512) < 0.05
    out.append(Workload("reference", "q_learning_update_ N=512 on 50 x 4 (vs the pure-Python reference)",
                        lambda: rl.q_learning_update_(Qs, ss, aa, rr, sn, tt, alpha=alpha, gamma=gamma),
                        {"nimbleops.reference": lambda: ref.q_learning_update_(Qs.copy(), ss, aa, rr, sn, tt,
                                                                              alpha=alpha, gamma=gamma)},
                        family="td"))
    return out


def trace_workloads() -> List[Workload]:
    """TD(lambda) tabular step (B=64 envs, S=10,000) and linear TD(lambda) (B=1024, d=256), float32."""
    rng = np.random.default_rng(6)
    B, S, gamma, lam, alpha = 64, 10_000, 0.99, 0.9, 0.1
    s, s_next = rng.integers(0, S, B), rng.integers(0, S, B)
    r = rng.standard_normal(B).astype(np.float32)
    term, trunc = rng.random(B) < 0.02, rng.random(B) < 0.01
    V, e = rng.standard_normal(S).astype(np.float32), np.zeros((B, S), np.float32)
    V_np, e_np = V.copy(), e.copy()
    decay = np.where(term | trunc, 0.0, gamma * lam).astype(np.float32)[:, None]

    def numpy_td_lambda():
        delta = r + np.float32(gamma) * ~term * V_np[s_next] - V_np[s]
        e_np[np.arange(B), s] += 1
        V_np[...] += np.float32(alpha) * (delta @ e_np)
        np.multiply(e_np, decay, out=e_np)
        return delta

    Bl, d, alpha_linear = 1024, 256, 1e-6
    w, z = np.zeros(d, np.float32), np.zeros((Bl, d), np.float32)
    w_np, z_np = w.copy(), z.copy()
    phi, phi_next = (rng.standard_normal((Bl, d)).astype(np.float32) for _ in range(2))
    rl_, tl, ul = rng.standard_normal(Bl).astype(np.float32), rng.random(Bl) < 0.02, rng.random(Bl) < 0.01
    keep = ~(tl | ul)

    def numpy_linear():
        delta = rl_ + np.float32(gamma) * ~tl * (phi_next @ w_np) - phi @ w_np
        z_np[...] = np.float32(gamma * lam) * z_np + phi
        w_np[...] += np.float32(alpha_linear) * (delta @ z_np)
        z_np[~keep] = 0
        return delta

    return [
        Workload("traces", f"TD(lambda) tabular step B={B} S={S:,} float32",
                 lambda: rl.td_lambda_step_(V, e, s, r, s_next, term, trunc, alpha=alpha, gamma=gamma, lam=lam),
                 {"numpy (vectorised over the batch)": numpy_td_lambda}, 2 * e.nbytes),
        Workload("traces", f"linear TD(lambda) step B={Bl} d={d} float32",
                 lambda: rl.linear_td_lambda_step_(w, z, phi, rl_, phi_next, tl, ul, alpha=alpha_linear, gamma=gamma,
                                                   lam=lam),
                 {"numpy (BLAS GEMV)": numpy_linear}, 2 * z.nbytes + 2 * phi.nbytes),
    ]


def proposals(rng, N: int, K: int, image: int = 320):
    """[N*K, 5] ThunderNet-like proposals on an image x image input: (batch index, x1, y1, x2, y2)."""
    xy = rng.uniform(0, image - 16, (N * K, 2))
    wh = rng.uniform(16, image / 2, (N * K, 2))
    return np.concatenate([np.repeat(np.arange(N), K)[:, None], xy, np.minimum(xy + wh, image)], 1)


def vision_workloads() -> List[Workload]:
    """ThunderNet's R-CNN head: PSRoIAlign / PSRoIPool on its 245-channel thin map (5 x 7 x 7, stride
    16, 20 x 20 at 320 x 320 input), output 7, scale 1/16, sampling 2, float32, torch tensors; and its
    NMS (the RPN's proposals, the detections' per-class NMS) against torchvision."""
    if not importable("torch"):
        return []
    import torch

    from nimbleops import vision
    from nimbleops.reference import vision as vision_ref

    tv = importlib.import_module("torchvision.ops") if importable("torchvision") else None
    out = []
    rng = np.random.default_rng(7)
    for N, K in ((1, 200), (1, 1000), (8, 200), (8, 1000)):
        x = torch.from_numpy(rng.standard_normal((N, 245, 20, 20)).astype(np.float32))
        boxes = torch.from_numpy(proposals(rng, N, K).astype(np.float32))
        rois = boxes.double()  # ours takes any float boxes; torchvision wants the input's dtype
        xg = x.clone().requires_grad_()
        grad = torch.from_numpy(rng.standard_normal((N * K, 5, 7, 7)).astype(np.float32))
        ops = {
            "ps_roi_align": (lambda t, b: vision.ps_roi_align(t, b, 7, 1 / 16, 2),
                             tv and (lambda t, b: tv.ps_roi_align(t, b, 7, 1 / 16, 2))),
            "ps_roi_pool": (lambda t, b: vision.ps_roi_pool(t, b, 7, 1 / 16),
                            tv and (lambda t, b: tv.ps_roi_pool(t, b, 7, 1 / 16))),
        }
        for op, (ours, theirs) in ops.items():
            name = f"{op} [{N}, 245, 20, 20] K={N * K} float32"

            def fwd_bwd(f, b, xg=xg, grad=grad):  # bound now: the loop rebinds xg and grad
                def run():
                    xg.grad = None
                    f(xg, b).backward(grad)
                return run

            peers = {"torchvision": lambda theirs=theirs, x=x, boxes=boxes: theirs(x, boxes)} if theirs else {}
            if (N, K) == (1, 200):
                reference = vision_ref.ps_roi_align if op == "ps_roi_align" else vision_ref.ps_roi_pool
                args = (7, 1 / 16, 2) if op == "ps_roi_align" else (7, 1 / 16)
                x_np, rois_np = x.numpy(), rois.numpy()
                peers["nimbleops.reference"] = lambda reference=reference, args=args, x_np=x_np, rois_np=rois_np: \
                    reference(x_np, rois_np, *args)
            out.append(Workload("ps-roi", f"{name}: forward", lambda ours=ours, x=x, rois=rois: ours(x, rois), peers))
            peers = {"torchvision": fwd_bwd(theirs, boxes)} if theirs else {}
            out.append(Workload("ps-roi", f"{name}: forward + backward", fwd_bwd(ours, rois), peers))
    # NMS as ThunderNet runs it: the RPN's proposals of one image (training: top 2000, IoU 0.7, the
    # first 1000 kept) and the detections' per-class NMS (IoU 0.5, the first 100 kept)
    for K, groups, threshold, cap in ((2000, 0, 0.7, 1000), (4000, 80, 0.5, 100)):
        b = torch.from_numpy(proposals(rng, 1, K)[:, 1:].astype(np.float32))
        sc = torch.from_numpy(rng.random(K).astype(np.float32))
        cls = torch.from_numpy(rng.integers(1, groups + 1, K)) if groups else None
        if cls is None:
            name = f"nms K={K} IoU {threshold} float32, the first {cap} kept"
            ours = (lambda b=b, sc=sc, t=threshold, c=cap: vision.nms(b, sc, t, max_output=c))
            peers = {"torchvision": lambda b=b, sc=sc, t=threshold, c=cap: tv.nms(b, sc, t)[:c]} if tv else {}
        else:
            name = f"batched_nms K={K} in {groups} classes IoU {threshold} float32, the first {cap} kept"
            ours = (lambda b=b, sc=sc, g=cls, t=threshold, c=cap: vision.batched_nms(b, sc, g, t, max_output=c))
            peers = {"torchvision": lambda b=b, sc=sc, g=cls, t=threshold, c=cap: tv.batched_nms(b, sc, g, t)[:c]} \
                if tv else {}
        out.append(Workload("nms", name, ours, peers))
    return out


def conv_workloads() -> List[Workload]:
    """ThunderNet's SNet146 at 320 x 320, batch 8, float32: depthwise 5x5 / 3x3, pointwise (with the
    fused shuffle), channel shuffle and the fused concat + shuffle + split, training-mode batch norm
    + ReLU (+ the stem's max pool), against torch; and at inference, batch 1, a stage in one call and
    the stem's conv + ReLU + max pool in one op."""
    if not importable("torch"):
        return []
    import torch
    import torch.nn.functional as F

    from nimbleops import vision

    out: List[Workload] = []
    gen = torch.Generator().manual_seed(11)
    cl = torch.channels_last

    def fwd_bwd(f, x, w, b):
        xg, wg, bg = (t.detach().clone().requires_grad_() for t in (x, w, b))
        grad = torch.randn(f(x, w, b).shape, generator=gen).contiguous(memory_format=torch.contiguous_format)

        def run():
            xg.grad = wg.grad = bg.grad = None
            f(xg, wg, bg).backward(grad)
        return run

    for shape, k, stride in (((8, 132, 40, 40), 5, 1), ((8, 264, 20, 20), 5, 1), ((8, 528, 10, 10), 5, 1),
                             ((8, 132, 80, 80), 5, 2), ((1, 132, 40, 40), 3, 1)):
        C = shape[1]
        x = torch.randn(shape, generator=gen)
        xc = x.contiguous(memory_format=cl)
        w = torch.randn(C, 1, k, k, generator=gen) * 0.2
        b = torch.randn(C, generator=gen)
        ours = lambda x, w, b, s=stride, p=k // 2: vision.depthwise_conv2d(x, w, b, s, p)  # noqa: E731
        theirs = lambda x, w, b, s=stride, p=k // 2, C=C: F.conv2d(x, w, b, s, p, groups=C)  # noqa: E731
        oh = (shape[2] + 2 * (k // 2) - k) // stride + 1
        flops = 2 * shape[0] * C * oh * oh * k * k
        name = f"depthwise {k}x{k} s{stride} {list(shape)} float32"
        out.append(Workload("depthwise", f"{name}: forward, NCHW",
                            lambda ours=ours, x=x, w=w, b=b: ours(x, w, b),
                            {"torch conv2d NCHW": lambda theirs=theirs, x=x, w=w, b=b: theirs(x, w, b)}, flops=flops))
        out.append(Workload("depthwise", f"{name}: forward, channels_last",
                            lambda ours=ours, x=xc, w=w, b=b: ours(x, w, b),
                            {"torch conv2d channels_last": lambda theirs=theirs, x=xc, w=w, b=b: theirs(x, w, b),
                             "torch conv2d NCHW": lambda theirs=theirs, x=x, w=w, b=b: theirs(x, w, b)}, flops=flops))
        out.append(Workload("depthwise", f"{name}: forward + backward, NCHW", fwd_bwd(ours, x, w, b),
                            {"torch conv2d NCHW": fwd_bwd(theirs, x, w, b),
                             "torch conv2d channels_last": fwd_bwd(theirs, xc, w, b)}, flops=3 * flops))
    for shape, shuffle in (((8, 132, 40, 40), None), ((8, 264, 20, 20), 2)):
        C = shape[1]
        x = torch.randn(shape, generator=gen)
        w = torch.randn(C, C, 1, 1, generator=gen) / C ** 0.5
        b = torch.randn(C, generator=gen)
        flops = 2 * shape[0] * C * C * shape[2] * shape[3]
        peers = {"torch conv2d": lambda x=x, w=w, b=b: F.conv2d(x, w, b)}
        if shuffle:
            peers = {"torch conv2d + channel_shuffle": lambda x=x, w=w, b=b: F.channel_shuffle(F.conv2d(x, w, b), 2),
                     **peers}
        out.append(Workload("pointwise", f"pointwise 1x1 {list(shape)} -> {C} float32"
                            + (" with the output shuffled (groups 2)" if shuffle else ""),
                            lambda x=x, w=w, b=b, s=shuffle: vision.pointwise_conv2d(x, w, b, shuffle_groups=s),
                            peers, flops=flops))
    x = torch.randn(8, 264, 40, 40, generator=gen)
    out.append(Workload("shuffle", "channel_shuffle [8, 264, 40, 40] groups 2 float32 (GB/s: read + write)",
                        lambda: vision.channel_shuffle(x, 2),
                        {"torch channel_shuffle": lambda: F.channel_shuffle(x, 2)}, 2 * x.nbytes, versus="copy"))
    out.append(_stage_workload())
    # SNet's stem at inference, batch 1: conv1 (batch norm folded) -> ReLU -> max pool
    xs1, ws1, bs1 = torch.randn(1, 3, 320, 320, generator=gen), torch.randn(24, 3, 3, 3, generator=gen), \
        torch.randn(24, generator=gen)
    ws1c = ws1.contiguous(memory_format=cl)
    out.append(Workload("conv-pool", "conv 3x3 s2 [1, 3, 320, 320] -> 24 + ReLU + max pool 3x3 s2 float32, "
                        "inference, 2 threads", _threads(2, lambda: vision.conv2d_relu_max_pool(xs1, ws1, bs1, 2, 1)),
                        {"torch conv2d + relu + max_pool2d (channels_last), to NCHW": _threads(2, lambda: F.max_pool2d(
                            F.relu(F.conv2d(xs1.contiguous(memory_format=cl), ws1c, bs1, 2, 1)), 3, 2, 1).contiguous()),
                         "torch conv2d + relu + max_pool2d (NCHW)": _threads(2, lambda: F.max_pool2d(
                             F.relu(F.conv2d(xs1, ws1, bs1, 2, 1)), 3, 2, 1))},
                        flops=2 * 24 * 27 * 160 * 160))
    for shape in ((8, 66, 40, 40), (8, 264, 10, 10)):
        xb = torch.randn(shape, generator=gen).requires_grad_()
        gb, bw = torch.randn(shape, generator=gen), torch.ones(shape[1], requires_grad=True)
        bbias = torch.zeros(shape[1], requires_grad=True)
        stats = [torch.zeros(shape[1]), torch.ones(shape[1])]

        def bn_step(f, xb=xb, gb=gb, bw=bw, bbias=bbias, stats=stats):
            def run():
                xb.grad = bw.grad = bbias.grad = None
                f(xb, bw, bbias, *stats).backward(gb)
            return run
        ours_bn = bn_step(lambda x, w, b, rm, rv: vision.batch_norm_relu(x, w, b, rm, rv))
        torch_bn = bn_step(lambda x, w, b, rm, rv: F.relu(F.batch_norm(x, rm, rv, w, b, training=True)))
        out.append(Workload("batch-norm", f"batch norm + ReLU, training mode, {list(shape)} float32: forward + "
                            "backward (GB/s: the 2 + 4 passes' bytes)", ours_bn,
                            {"torch batch_norm + relu": torch_bn}, 6 * xb.numel() * 4, versus="copy"))
    # SNet's stem tail: conv1's output [8, 24, 160, 160] (channels_last) -> BN -> ReLU -> max pool 3x3 s2
    xs = torch.randn(8, 24, 160, 160, generator=gen).contiguous(memory_format=cl).requires_grad_()
    gs = torch.randn(8, 24, 80, 80, generator=gen)
    sw, sb = torch.ones(24, requires_grad=True), torch.zeros(24, requires_grad=True)
    sstats = [torch.zeros(24), torch.ones(24)]

    def stem_step(f):
        def run():
            xs.grad = sw.grad = sb.grad = None
            f().backward(gs)
        return run
    out.append(Workload("batch-norm", "batch norm + ReLU + max pool 3x3 s2, training mode, [8, 24, 160, 160] "
                        "channels_last float32: forward + backward",
                        stem_step(lambda: vision.batch_norm_relu_max_pool(xs, sw, sb, *sstats)),
                        {"torch batch_norm + relu + max_pool2d (channels_last), to NCHW": stem_step(
                            lambda: F.max_pool2d(F.relu(F.batch_norm(xs, *sstats, sw, sb, training=True)), 3, 2,
                                                 1).contiguous())}))
    a, bb = torch.randn(8, 132, 40, 40, generator=gen), torch.randn(8, 132, 40, 40, generator=gen)

    def torch_css():
        n, c, h, w_ = a.shape[0], a.shape[1] + bb.shape[1], a.shape[2], a.shape[3]
        return torch.cat([a, bb], 1).view(n, 2, c // 2, h, w_).transpose(1, 2).contiguous().view(n, c, h, w_).chunk(2, 1)

    out.append(Workload("shuffle", "concat_shuffle_split 2 x [8, 132, 40, 40] float32 (GB/s: read + write)",
                        lambda: vision.concat_shuffle_split(a, bb),
                        {"torch cat + view/transpose/contiguous + chunk": torch_css}, 2 * (a.nbytes + bb.nbytes),
                        versus="copy"))
    return out


def _stage_workload() -> Workload:
    """SNet146's stage 3 in eval mode at batch 1 (8 units, [1, 132, 40, 40] -> [1, 264, 20, 20]):
    the stage in one call (:class:`nimbleops.vision.ShuffleStage`, as optimize_for_inference's
    backbone runs it) against the same folded units one by one on the unfused ops and torch's
    eager stage in channels_last."""
    import torch

    from nimbleops.models import SNet, optimize_for_inference
    from nimbleops.models.snet import run_stage

    torch.manual_seed(12)
    ours = SNet("snet146").eval()
    fast = optimize_for_inference(ours)
    theirs = SNet("snet146", backend="torch").eval()
    theirs.load_state_dict(ours.state_dict())
    theirs = theirs.to(memory_format=torch.channels_last)
    x = torch.randn(1, 132, 40, 40)
    xc = x.contiguous(memory_format=torch.channels_last)
    stage = fast.stages[1]

    def no_grad(f):
        def run():
            with torch.no_grad():
                return f()
        return run
    return Workload("shufflenet-stage", "SNet146 stage 3 (8 units) [1, 132, 40, 40] -> [1, 264, 20, 20] float32, "
                    "eval, 2 threads: vision.ShuffleStage",
                    _threads(2, no_grad(lambda: stage(x))),
                    {"the same units one by one (unfused ops)": _threads(2, no_grad(
                        lambda: run_stage(fast.stage3, x, "nimbleops"))),
                     "torch eager channels_last": _threads(2, no_grad(lambda: theirs.stage3(xc)))})


def overhead_workloads() -> List[Workload]:
    """Call overhead: every public op on tiny inputs, 1 thread; ours is the call with CPU torch
    tensors (no autograd graph), against the same call with numpy arrays, the bare kernel (the
    compiled entry point with its inputs prepared once) where one is shown, and torch's own op
    where there is one. At these sizes the times are the fixed cost of a call."""
    import torch
    import torch.nn.functional as F

    from nimbleops import _C, vision

    g = np.random.default_rng(8)
    T, B, S, A, N = 8, 4, 16, 4, 8

    def arr(*shape, dtype="float32"):
        return g.standard_normal(shape).astype(dtype)

    def both(*arrays):  # numpy arrays and torch tensors sharing their memory
        return arrays, tuple(torch.from_numpy(x) for x in arrays)

    r, v, nv, lr = (arr(T, B) for _ in range(4))
    done = np.zeros((T, B), bool)
    (r, v, nv, lr, done), (rt, vt, nvt, lrt, donet) = both(r, v, nv, lr, done)
    P = g.random((S, A, S)).astype("float32")
    P /= P.sum(-1, keepdims=True)
    R, V = arr(S, A), arr(S)
    (P, R, V), (Pt, Rt, Vt) = both(P, R, V)
    Q, V1 = arr(S, A), arr(S)
    (Q, V1), (Qt, V1t) = both(Q, V1)
    s, a, s2, a2 = (g.integers(0, n, N) for n in (S, A, S, A))
    rw, term = arr(N), np.zeros(N, bool)
    (s, a, s2, a2, rw, term), (st, at, s2t, a2t, rwt, termt) = both(s, a, s2, a2, rw, term)
    e, eV = np.zeros((N, S, A), "float32"), np.zeros((N, S), "float32")
    (e, eV), (et, eVt) = both(e, eV)
    w, z, phi, phi2 = np.zeros(6, "float32"), np.zeros((N, 6), "float32"), arr(N, 6), arr(N, 6)
    (w, z, phi, phi2), (wt, zt, phit, phi2t) = both(w, z, phi, phi2)
    x, x2 = arr(1, 8, 4, 4), arr(1, 8, 4, 4)
    (x, x2), (xt, x2t) = both(x, x2)
    wdw, wpw, bias, ones = arr(8, 1, 3, 3), arr(8, 8, 1, 1), arr(8), np.ones(8, "float32")
    (wdw, wpw, bias, ones), (wdwt, wpwt, biast, onest) = both(wdw, wpw, bias, ones)
    feat, boxes = arr(1, 8, 8, 8), np.array([[0, 1, 1, 6, 6]], "float64")
    (feat, boxes), (featt, boxest) = both(feat, boxes)
    corners = g.uniform(0, 20, (8, 2)).astype("float32")
    nms_boxes, nms_scores, nms_group = np.concatenate((corners, corners + 5), 1), arr(8), g.integers(0, 2, 8)
    nms_args, nms_groups = both(nms_boxes, nms_scores), both(nms_group)
    unit = [vision.ShuffleUnitWeights(*ws) for ws in both(arr(4, 4), arr(4), arr(4, 1, 3, 3), arr(4), arr(4, 4), arr(4))]
    gm = dict(gamma=0.99)

    ret = [(r, nv, done, done), (rt, nvt, donet, donet)]  # the arguments of kind k: 0 numpy, 1 torch
    gae_args = [(r, v, nv, done, done), (rt, vt, nvt, donet, donet)]
    vtrace_args = [(r, v, nv, lr, done, done), (rt, vt, nvt, lrt, donet, donet)]
    mdp = [(P, R, V), (Pt, Rt, Vt)]
    td0 = [(V1, s, rw, s2, term), (V1t, st, rwt, s2t, termt)]
    qlearn = [(Q, s, a, rw, s2, term), (Qt, st, at, rwt, s2t, termt)]
    sarsa = [(Q, s, a, rw, s2, a2, term), (Qt, st, at, rwt, s2t, a2t, termt)]
    td_lam = [(V1, eV, s, rw, s2, term, term), (V1t, eVt, st, rwt, s2t, termt, termt)]
    sarsa_lam = [(Q, e, s, a, rw, s2, a2, term, term), (Qt, et, st, at, rwt, s2t, a2t, termt, termt)]
    linear = [(w, z, phi, rw, phi2, term, term), (wt, zt, phit, rwt, phi2t, termt, termt)]
    images, pairs = [(x,), (xt,)], [(x, x2), (xt, x2t)]
    dw, pw = [(x, wdw, bias), (xt, wdwt, biast)], [(x, wpw, bias), (xt, wpwt, biast)]
    bn, roi = [(x, ones, bias), (xt, onest, biast)], [(feat, boxes), (featt, boxest)]
    calls = {  # name: (the call on the arguments of kind k, torch's own op or None)
        "rl.discounted_returns": (lambda k: rl.discounted_returns(*ret[k], **gm), None),
        "rl.n_step_returns": (lambda k: rl.n_step_returns(*ret[k], n=3, **gm), None),
        "rl.lambda_returns": (lambda k: rl.lambda_returns(*ret[k], lam=0.95, **gm), None),
        "rl.gae": (lambda k: rl.gae(*gae_args[k], lam=0.95, **gm), None),
        "rl.vtrace": (lambda k: rl.vtrace(*vtrace_args[k], **gm), None),
        "rl.q_values": (lambda k: rl.q_values(*mdp[k], 0.9), None),
        "rl.bellman_optimality_backup": (lambda k: rl.bellman_optimality_backup(*mdp[k], 0.9), None),
        "rl.value_iteration": (lambda k: rl.value_iteration(*mdp[k][:2], 0.9), None),
        "rl.td0_update_": (lambda k: rl.td0_update_(*td0[k], alpha=0.1, **gm), None),
        "rl.q_learning_update_": (lambda k: rl.q_learning_update_(*qlearn[k], alpha=0.1, **gm), None),
        "rl.sarsa_update_": (lambda k: rl.sarsa_update_(*sarsa[k], alpha=0.1, **gm), None),
        "rl.td_lambda_step_": (lambda k: rl.td_lambda_step_(*td_lam[k], alpha=0.1, lam=0.9, **gm), None),
        "rl.sarsa_lambda_step_": (lambda k: rl.sarsa_lambda_step_(*sarsa_lam[k], alpha=0.1, lam=0.9, **gm), None),
        "rl.linear_td_lambda_step_": (lambda k: rl.linear_td_lambda_step_(*linear[k], alpha=0.01, lam=0.9, **gm),
                                      None),
        "vision.channel_shuffle": (lambda k: vision.channel_shuffle(*images[k], 2), lambda: F.channel_shuffle(xt, 2)),
        "vision.concat_shuffle_split": (lambda k: vision.concat_shuffle_split(*pairs[k]),
                                        lambda: F.channel_shuffle(torch.cat([xt, x2t], 1), 2).chunk(2, 1)),
        "vision.depthwise_conv2d": (lambda k: vision.depthwise_conv2d(*dw[k], 1, 1),
                                    lambda: F.conv2d(xt, wdwt, biast, 1, 1, 1, 8)),
        "vision.pointwise_conv2d": (lambda k: vision.pointwise_conv2d(*pw[k]), lambda: F.conv2d(xt, wpwt, biast)),
        "vision.batch_norm_relu": (lambda k: vision.batch_norm_relu(*bn[k]),
                                   lambda: F.relu(F.batch_norm(xt, None, None, onest, biast, training=True))),
        "vision.ps_roi_align": (lambda k: vision.ps_roi_align(*roi[k], 2), None),
        "vision.ps_roi_pool": (lambda k: vision.ps_roi_pool(*roi[k], 2), None),
        "vision.batch_norm_relu_max_pool": (lambda k: vision.batch_norm_relu_max_pool(*bn[k]), lambda: F.max_pool2d(
            F.relu(F.batch_norm(xt, None, None, onest, biast, training=True)), 3, 2, 1)),
        "vision.nms": (lambda k: vision.nms(*nms_args[k], 0.5), None),
        "vision.batched_nms": (lambda k: vision.batched_nms(*nms_args[k], nms_groups[k][0], 0.5), None),
        "vision.shufflenet_stage": (lambda k: vision.shufflenet_stage(images[k][0], [unit[k]]), None),
        "vision.conv2d_relu_max_pool": (lambda k: vision.conv2d_relu_max_pool(*pw[k]),
                                        lambda: F.max_pool2d(F.relu(F.conv2d(xt, wpwt, biast)), 3, 2, 1)),
    }
    if importable("torchvision"):
        import torchvision.ops as tv

        calls["vision.ps_roi_align"] = (calls["vision.ps_roi_align"][0],
                                        lambda: tv.ps_roi_align(featt, boxest.float(), 2, 1.0, -1))
        calls["vision.nms"] = (calls["vision.nms"][0], lambda: tv.nms(*nms_args[1], 0.5))
        calls["vision.batched_nms"] = (calls["vision.batched_nms"][0],
                                       lambda: tv.batched_nms(*nms_args[1], nms_groups[1][0], 0.5))
    # the bare kernels of a few ops: the compiled entry point, its handle and outputs prepared once
    view = _C.View.of_tensor
    gae_out = (torch.empty_like(rt), torch.empty_like(rt))
    gae_handle = _C.rl.ReturnsInputs("gae", view(rt), view(vt), view(nvt), view(donet), view(donet), None, 0.99,
                                     0.95, 1, None, None, 0)
    shuffled = torch.empty_like(xt)
    dw_handle = _C.vision.DepthwiseInputs(view(xt), view(wdwt), view(biast), (3, 3), (1, 1), (1, 1), (1, 1), 0)
    dw_out = torch.empty_like(xt)
    pw_handle = _C.vision.PointwiseInputs(view(xt), view(wpwt.view(8, 8)), view(biast), 1, 0, False, 0)
    gae_views, shuffle_views, dw_view = [view(o) for o in gae_out], ([view(xt)], [view(shuffled)]), view(dw_out)
    # views hold raw pointers: each function keeps the arrays its views read and write alive
    alive = (xt, wdwt, wpwt, biast, rt, vt, nvt, donet, gae_out, shuffled, dw_out)
    bare = {
        "rl.gae": lambda alive=alive: _C.rl.returns_forward_cpu(gae_handle, *gae_views),
        "vision.channel_shuffle": lambda alive=alive: _C.vision.channel_gather_cpu("shuffle", 2, *shuffle_views, 0),
        "vision.depthwise_conv2d": lambda alive=alive: _C.vision.depthwise_forward_cpu(dw_handle, dw_view),
        "vision.pointwise_conv2d": lambda alive=alive: _C.vision.pointwise_forward_cpu(pw_handle, dw_view),
    }
    out = []
    k = _OVERHEAD_CALLS
    for name, (call, torch_op) in calls.items():
        peers = {"numpy arrays": _threads(1, lambda call=call: call(0), k)}
        if name in bare:
            peers["bare kernel (inputs prepared once)"] = _threads(1, bare[name], k)
        if torch_op is not None:
            peers["torch's own op"] = _threads(1, torch_op, k)
        with torch.no_grad():
            call(1)  # the call works on these inputs (a broken row fails here, not in the table)
        out.append(Workload("call-overhead", f"{name} on tiny inputs, torch CPU tensors, 1 thread",
                            _threads(1, lambda call=call: call(1), k), peers, calls=k))
    return out


# calls per timed function in the call-overhead rows: the thread counts are set once around them,
# and neither that nor the timer is a noticeable part of a call's time
_OVERHEAD_CALLS = 20


def _threads(n: int, fn: Callable[[], object], calls: int = 1) -> Callable[[], object]:
    """fn run (`calls` times) with n threads in nimbleops and in torch, the counts restored after."""
    import torch

    def run():
        before = (nimbleops.get_num_threads(), torch.get_num_threads())
        nimbleops.set_num_threads(n)
        torch.set_num_threads(n)
        try:
            for _ in range(calls - 1):
                fn()
            return fn()
        finally:
            nimbleops.set_num_threads(before[0])
            torch.set_num_threads(before[1])
    return run


def _detection_targets(rng, n: int, size: int, num_classes: int):
    import torch

    out = []
    for _ in range(n):
        k = int(rng.integers(1, 6))
        xy = rng.uniform(0, size * 0.7, (k, 2))
        wh = rng.uniform(16, size * 0.3, (k, 2))
        out.append({"boxes": torch.tensor(np.concatenate([xy, xy + wh], 1), dtype=torch.float32),
                    "labels": torch.from_numpy(rng.integers(1, num_classes + 1, k))})
    return out


def model_workloads(full: bool = False) -> List[Workload]:
    """ThunderNet at 320 x 320 (ThunderNet's input size): inference at batch 1 (the eval model made by
    optimize_for_inference) and a training step at batch 8 (forward with the losses, backward, SGD
    step), against the same model on torch eager (NCHW and channels_last), torch.compile of it, and
    onnxruntime / OpenVINO running its exported backbone. The default builds the tour's row only."""
    if not importable("torch") or not importable("torchvision"):
        return []
    import torch

    from nimbleops.models import ThunderNet, optimize_for_inference

    cl = torch.channels_last
    out: List[Workload] = []
    rng = np.random.default_rng(13)

    def no_grad(fn):
        def run():
            with torch.no_grad():
                return fn()
        return run

    variants = ("snet49", "snet146", "snet535") if full else ("snet146",)
    for variant in variants:
        torch.manual_seed(0)
        ours = ThunderNet(variant, num_classes=80).eval()
        eager = ThunderNet(variant, num_classes=80, backend="torch").eval()
        eager.load_state_dict(ours.state_dict())
        eager_cl = ThunderNet(variant, num_classes=80, backend="torch").eval().to(memory_format=cl)
        eager_cl.load_state_dict(ours.state_dict())
        fast = optimize_for_inference(ours)
        x = torch.randn(1, 3, 320, 320)
        xc = x.contiguous(memory_format=cl)
        for threads in ((1, 2) if full else (2,)):
            peers = {"torch eager channels_last": _threads(threads, no_grad(lambda m=eager_cl: m(xc))),
                     "torch eager NCHW": _threads(threads, no_grad(lambda m=eager: m(x)))}
            if full:
                compiled = torch.compile(eager_cl)
                peers["torch.compile (channels_last)"] = _threads(threads, no_grad(lambda m=compiled: m(xc)))
            out.append(Workload("models", f"ThunderNet-{variant} 320x320 inference, batch 1, {threads} thread(s): "
                                "optimize_for_inference", _threads(threads, no_grad(lambda m=fast: m(x))), peers))
            if not full:
                continue
            backbone_peers = {"torch eager channels_last": _threads(threads, no_grad(lambda m=eager_cl: m.backbone(xc)))}
            backbone_peers.update(_exported_backbone_peers(eager.backbone, x, threads))
            out.append(Workload("models", f"SNet{variant[4:]} backbone 320x320, batch 1, {threads} thread(s): "
                                "optimize_for_inference", _threads(threads, no_grad(lambda m=fast: m.backbone(x))),
                                backbone_peers))
        if not full:
            continue
        # a training step at batch 8, the same data and samples for every model
        x8 = torch.randn(8, 3, 320, 320)
        targets = _detection_targets(rng, 8, 320, 80)
        train = {"nimbleops": (ThunderNet(variant, num_classes=80), x8)}
        for name, fmt in (("torch eager NCHW", None), ("torch eager channels_last", cl)):
            m = ThunderNet(variant, num_classes=80, backend="torch")
            if fmt is not None:
                m = m.to(memory_format=fmt)
            train[name] = (m, x8.contiguous(memory_format=fmt) if fmt is not None else x8)
        # torch.compile of the dense part (backbone to heads): the whole training forward, with its
        # data-dependent sampling, fails inside torch.compile's runtime wrapper on this torch
        compiled = ThunderNet(variant, num_classes=80, backend="torch").to(memory_format=cl)
        compiled.features = torch.compile(compiled.features)
        train["torch.compile of the features (channels_last)"] = (compiled, x8.contiguous(memory_format=cl))
        steps = {}
        for name, (m, xx) in train.items():
            m.load_state_dict(ours.state_dict())
            m.train()
            opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)

            def step(m=m, xx=xx, opt=opt):
                torch.manual_seed(0)
                loss = sum(m(xx, targets).values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            steps[name] = _threads(2, step)
        out.append(Workload("models", f"ThunderNet-{variant} 320x320 training step, batch 8, 2 threads",
                            steps.pop("nimbleops"), steps))
    if full:
        out += _converted_workloads()
    return out


def _exported_backbone_peers(backbone, x, threads: int) -> Dict[str, Callable[[], object]]:
    """onnxruntime and OpenVINO running the torch backbone exported to ONNX, where installed."""
    import tempfile

    import torch

    peers: Dict[str, Callable[[], object]] = {}
    if not importable("onnx"):
        return peers
    path = tempfile.mkstemp(suffix=".onnx")[1]
    torch.onnx.export(backbone, (x,), path, dynamo=False, opset_version=17, input_names=["image"])
    xin = x.numpy()
    if importable("onnxruntime"):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        peers["onnxruntime (exported torch backbone)"] = lambda: sess.run(None, {"image": xin})
    if importable("openvino"):
        import openvino as ov

        core = ov.Core()
        core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
        request = core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
        peers["OpenVINO f32 (exported torch backbone)"] = lambda: request.infer({0: xin})
    return peers


def _converted_workloads() -> List[Workload]:
    """torchvision's shufflenet_v2_x1_0 and mobilenet_v3_small through nimbleops.nn.convert, against
    the stock models: a training step at batch 8 and an inference at batch 1, 224 x 224, 2 threads."""
    import torch
    import torchvision

    from nimbleops import nn as nno

    out = []
    for arch in ("shufflenet_v2_x1_0", "mobilenet_v3_small"):
        torch.manual_seed(0)
        stock = getattr(torchvision.models, arch)().train()
        ours = nno.convert(stock)
        x = torch.randn(8, 3, 224, 224)
        y = torch.randint(0, 1000, (8,))
        steps = {}
        for name, m in (("nimbleops", ours), ("torchvision stock", stock)):
            opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)

            def step(m=m, opt=opt):
                m.train()
                loss = torch.nn.functional.cross_entropy(m(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            steps[name] = _threads(2, step)
        out.append(Workload("models", f"torchvision {arch} via nimbleops.nn.convert, 224x224 training step, batch 8, "
                            "2 threads", steps.pop("nimbleops"), steps))
        x1 = torch.randn(1, 3, 224, 224)
        infer = {}
        for name, m in (("nimbleops", ours), ("torchvision stock", stock)):
            def run(m=m):
                m.eval()
                with torch.no_grad():
                    return m(x1)
            infer[name] = _threads(2, run)
        out.append(Workload("models", f"torchvision {arch} via nimbleops.nn.convert, 224x224 inference, batch 1, "
                            "2 threads", infer.pop("nimbleops"), infer))
    return out


def workloads(quick: bool = False) -> List[Workload]:
    """Every workload of the full table, in its order."""
    return [w for builder in _BUILDERS for w in builder(quick)]


_BUILDERS = (lambda q: dense_workloads(), lambda q: batched_workloads(), sparse_workloads,
             lambda q: large_sparse_workloads(), lambda q: reference_workloads(), lambda q: returns_workloads(),
             lambda q: td_workloads(), lambda q: trace_workloads(), lambda q: conv_workloads(),
             lambda q: vision_workloads(), lambda q: model_workloads(full=True), lambda q: overhead_workloads())

_GROUP_FAMILY = {"a-dense-sweep": "bellman", "a-dense-solve": "bellman", "b-batched-sweep": "bellman",
                 "c-sparse-sweep": "bellman", "c-sparse-solve": "bellman", "d-large-sparse-sweep": "bellman",
                 "gae": "returns", "call-overhead": "overhead",
                 "lambda-returns": "returns", "td-q-learning": "td", "traces": "traces", "depthwise": "depthwise",
                 "pointwise": "pointwise", "shuffle": "shuffle", "batch-norm": "batch_norm", "ps-roi": "ps_roi",
                 "nms": "nms", "shufflenet-stage": "shufflenet_stage", "conv-pool": "conv_pool", "models": "models"}

#: family -> (builder of its workloads, the tour's workload (a prefix of its name), its main peer)
FAMILIES = {
    "bellman": (batched_workloads, "(b) 1024 MDPs", "numpy einsum"),
    "returns": (returns_workloads, "GAE T=128 B=1024", "numpy loop (Stable-Baselines3)"),
    "td": (td_workloads, "q_learning_update_ N=65,536", "numpy batch update (numpy.add.at)"),
    "traces": (trace_workloads, "TD(lambda) tabular step", "numpy (vectorised over the batch)"),
    "depthwise": (conv_workloads, "depthwise 5x5 s1 [8, 264, 20, 20] float32: forward, channels_last",
                  "torch conv2d channels_last"),
    "pointwise": (conv_workloads, "pointwise 1x1 [8, 132, 40, 40]", "torch conv2d"),
    "shuffle": (conv_workloads, "concat_shuffle_split", "torch cat + view/transpose/contiguous + chunk"),
    "batch_norm": (conv_workloads, "batch norm + ReLU, training mode, [8, 66, 40, 40]", "torch batch_norm + relu"),
    "ps_roi": (vision_workloads, "ps_roi_align [1, 245, 20, 20] K=200 float32: forward", "torchvision"),
    "nms": (vision_workloads, "nms K=2000", "torchvision"),
    "shufflenet_stage": (conv_workloads, "SNet146 stage 3", "the same units one by one (unfused ops)"),
    "conv_pool": (conv_workloads, "conv 3x3 s2 [1, 3, 320, 320]",
                  "torch conv2d + relu + max_pool2d (channels_last), to NCHW"),
    "models": (model_workloads, "ThunderNet-snet146 320x320 inference, batch 1, 2 thread(s)", "torch eager channels_last"),
    "overhead": (overhead_workloads, "rl.gae on tiny inputs", "numpy arrays"),
}


def tour(families: List[str]) -> List[Workload]:
    """One workload per family, against its main peer only (or the first peer installed)."""
    built: Dict[Callable, List[Workload]] = {}
    out = []
    for family in families:
        builder, prefix, peer = FAMILIES[family]
        if builder not in built:
            built[builder] = builder()
        for w in built[builder]:
            if w.name.startswith(prefix):
                keep = {peer: w.peers[peer]} if peer in w.peers else dict(list(w.peers.items())[:1])
                out.append(Workload(w.group, w.name, w.ours, keep, w.bytes_moved, w.note, w.versus, w.flops, family))
                break
    return out


@dataclass
class Row:
    """One measured workload: ours and each peer, with the ratio per round of alternation."""

    workload: Workload
    ours: Timing
    peers: List[tuple]  # (name, Timing, ratio median, ratio IQR)
    failed: List[tuple] = field(default_factory=list)  # (peer name, its error)

    @property
    def warnings(self) -> List[str]:
        out = []
        if self.ours.quantised or any(t.quantised for _, t, _, _ in self.peers):
            out.append("timer-quantised (calls took whole milliseconds: a loaded machine)")
        if any(iqr > 0.25 * ratio for _, _, ratio, iqr in self.peers) or self.ours.iqr > 0.25 * self.ours.median:
            out.append("spread over 25% between rounds")
        return out

    def as_dict(self) -> dict:
        w = self.workload
        return {"family": w.family, "workload": w.name, "seconds": self.ours.median, "seconds_iqr": self.ours.iqr,
                "seconds_per_round": self.ours.blocks, "bytes": w.bytes_moved, "flops": w.flops,
                "peers": [{"name": n, "seconds": t.median, "seconds_iqr": t.iqr, "seconds_per_round": t.blocks,
                           "speedup": r, "speedup_iqr": i} for n, t, r, i in self.peers],
                "failed_peers": [{"name": n, "error": e} for n, e in self.failed], "warnings": self.warnings}


def run_workload(w: Workload, min_time: float, rounds: int) -> Row:
    """Ours and every peer timed interleaved, in one measurement; the ratio taken round by round. A
    peer that raises is left out of the measurement and reported with its error."""
    failed = []
    for name, fn in list(w.peers.items()):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a broken peer is reported, never the end of the run
            failed.append((name, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"))
    names = [n for n in w.peers if n not in dict(failed)]
    times = measure([w.ours] + [w.peers[n] for n in names], min_time=min_time, rounds=rounds)
    if w.calls != 1:
        k = w.calls
        times = [Timing(t.median / k, [b / k for b in t.blocks], [x / k for x in t.samples]) for t in times]
    ours = times[0]
    peers = []
    for name, t in zip(names, times[1:]):
        ratios = [p / o for p, o in zip(t.blocks, ours.blocks)]
        q1, q3 = _quartiles(ratios)
        peers.append((name, t, statistics.median(ratios), q3 - q1))
    return Row(w, ours, peers, failed)


class _Progress:
    """One line on stderr per workload: how far the run is and how long it has taken."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, name: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        print(f"[{self.done}/{self.total} {elapsed:5.0f} s] {name}", file=sys.stderr, flush=True)

def machine() -> str:
    info = nimbleops.build_info()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {info['num_threads']} threads, SIMD {info['simd_active']}, numpy {np.__version__}, "
            f"{info['compiler']}, CUDA {'on' if nimbleops.has_cuda() else 'off'}")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the whole table (default: one row per family)")
    parser.add_argument("--only", default="", metavar="FAMILY",
                        help="these families only, comma-separated: " + ", ".join(FAMILIES))
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.add_argument("--plot", metavar="PATH", help="draw the speed-ups to this image (needs matplotlib)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of alternation per workload (default 5)")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.only.split(",") if f.strip()] or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"--only: unknown family {', '.join(unknown)}; expected some of {', '.join(FAMILIES)}")
    if args.rounds < 2:
        parser.error(f"--rounds: expected at least 2 (a spread needs two rounds), got {args.rounds}")
    if args.plot and not installed("matplotlib"):
        parser.error("--plot needs matplotlib (pip install matplotlib)")

    print("measuring memory bandwidth ...", file=sys.stderr, flush=True)
    bw = memory_bandwidth()
    print(f"machine: {machine()}")
    print(f"memory bandwidth (numpy, this run): read {bw['read']:.1f} GB/s (GEMV), copy {bw['copy']:.1f} GB/s "
          "(read + write bytes)\n")
    print("building the workloads ...", file=sys.stderr, flush=True)
    if args.full:
        chosen = [w for w in workloads() if w.family in families]
    else:
        chosen = tour(families)
    print("| workload | nimbleops (IQR) | GB/s (% of read or copy) or GFLOP/s | peer | peer time (IQR) "
          "| peer / ours (IQR) |")
    print("|---|---|---|---|---|---|")
    progress = _Progress(len(chosen))
    rows = []
    for w in chosen:
        progress.step(w.name)
        row = run_workload(w, min_time=0.5, rounds=args.rounds)
        rows.append(row)
        _print_row(row, bw)
    noisy = [r for r in rows if r.warnings]
    if noisy:
        print("\n**Warning: the machine was too noisy for these ratios to mean much** (rerun them, e.g. "
              "`--only FAMILY`):")
        for r in noisy:
            print(f"- {r.workload.name}: {'; '.join(r.warnings)}")
    print(f"\n{len(rows)} workloads in {time.perf_counter() - progress.start:.0f} s; peer / ours above 1: "
          "nimbleops is faster. IQR: interquartile range over the rounds of alternation.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "bandwidth_gbs": bw, "rows": [r.as_dict() for r in rows]}, f, indent=1)
        print(f"results written to {args.json}")
    if args.plot:
        plot(rows, args.plot)
        print(f"speed-ups drawn to {args.plot}")


def _print_row(row: Row, bw: Dict[str, float]) -> None:
    w, t = row.workload, row.ours.median
    gbs = ""
    if w.bytes_moved:
        gbs = f"{w.bytes_moved / t / 1e9:.1f} ({100 * w.bytes_moved / t / 1e9 / bw[w.versus]:.0f}% of {w.versus})"
    elif w.flops:
        gbs = f"{w.flops / t / 1e9:.0f} GFLOP/s"
    name = w.name + (f" ({w.note})" if w.note else "") + (" **!**" if row.warnings else "")
    cells = [(n, f"{_fmt(pt.median)} ({_fmt(pt.iqr)})", f"{r:.2f}x ({i:.2f})") for n, pt, r, i in row.peers]
    cells += [(n, f"failed: {e}", "") for n, e in row.failed]
    for i, (peer, pt, ratio) in enumerate(cells or [("-", "", "")]):
        first = i == 0
        ours = f"{_fmt(t)} ({_fmt(row.ours.iqr)})" if first else ""
        print(f"| {name if first else ''} | {ours} | {gbs if first else ''} | {peer} | {pt} | {ratio} |", flush=True)


def plot(rows: List[Row], path: str) -> None:
    """A horizontal bar per workload: the speed-up over its first peer, with the IQR as error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.peers]
    labels = [textwrap.fill(f"{r.workload.name} vs {r.peers[0][0]}", 56) for r in rows]
    ratios = [r.peers[0][2] for r in rows]
    errors = [r.peers[0][3] / 2 for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.7 * len(rows) + 1.2))
    ax.barh(range(len(rows)), ratios, xerr=errors, color=["tab:green" if x >= 1 else "tab:red" for x in ratios])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("peer time / nimbleops time (above 1: nimbleops is faster)")
    ax.set_title(f"nimbleops speed-ups - {machine()}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(seconds: float) -> str:
    if seconds < 1e-5:  # a call's fixed cost: tenths of a microsecond matter
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


if __name__ == "__main__":
    main()
