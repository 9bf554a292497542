"""A sparse gridworld of 4 million states (2000 x 2000, 4 actions, about 4 successors each),
solved with rl.value_iteration and rl.modified_policy_iteration, against the same solvers in
scipy.sparse and in QuantEcon's DiscreteDP.

The model is the benchmark's gridworld (nimbleops.bench.gridworld): the intended move with
probability 0.7, each perpendicular move and staying put 0.1 (walls keep the agent in place),
reward -1 a step, an absorbing goal in a corner. The script reports the models' sizes; for each
solver its time, its iterations (sweeps for value iteration; for modified policy iteration, each
iteration is one optimality sweep and k = 20 evaluation sweeps) and the memory it adds at its
peak; and the bandwidth of one nimbleops sweep (the bytes of the CSR model, the rewards and the
values it reads and writes) against the machine's copy bandwidth. Every solver must reach the
same values, within the tolerance.

    python examples/large_gridworld.py [--n 2000] [--peers] [--threads N]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import resource
import time

import numpy as np

import nimbleops
from nimbleops import bench, rl

GAMMA, TOL = 0.95, 1e-6


def _status_gb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20  # kB
    raise KeyError(field)


def timed(fn):
    """(fn(), seconds, GB of memory the call added at its peak). Linux: the memory freed before the
    call goes back to the system (malloc_trim, so the call cannot reuse pages that are already
    resident) and the peak resident size is reset (/proc/self/clear_refs), so the peak is the
    call's own; elsewhere the process's peak so far stands in."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_gb("VmRSS")
        peak = lambda: _status_gb("VmHWM") - before  # noqa: E731
    except (OSError, AttributeError):
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # noqa: E731
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, peak()


def scipy_value_iteration(M, R, S, A):
    """Value iteration with the sup-norm rule, each sweep one scipy CSR matvec and a max/argmax."""
    flat_R = R.reshape(-1)
    threshold = TOL * (1 - GAMMA) / (2 * GAMMA)
    V = np.zeros(S)
    for sweep in range(1, 100_000):
        Q = (flat_R + GAMMA * (M @ V)).reshape(S, A)
        V_new = Q.max(1)
        done = np.abs(V_new - V).max() < threshold
        V = V_new
        if done:
            return V, Q.argmax(1), sweep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="grid side (states = n * n)")
    parser.add_argument("--peers", action="store_true", help="also solve with scipy.sparse and QuantEcon")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        nimbleops.set_num_threads(args.threads)
    (P, R, M), build, _ = timed(lambda: bench.gridworld(args.n))
    S, A = args.n * args.n, 4
    ours_bytes = P.indptr.nbytes + P.indices.nbytes + P.data.nbytes + R.nbytes
    print(f"gridworld {args.n} x {args.n}: S = {S:,}, A = {A}, {P.nnz / (S * A):.2f} successors a row, "
          f"built in {build:.1f} s")
    print(f"models: nimbleops {ours_bytes / 1e9:.2f} GB (CSR, int32 next states, float64), "
          f"scipy CSR {(M.indptr.nbytes + M.indices.nbytes + M.data.nbytes + R.nbytes) / 1e9:.2f} GB "
          f"(both with R)")

    V = np.zeros(S)
    rl.bellman_optimality_backup(P, R, V, GAMMA)  # warm-up (and the one-time model check)
    sweeps = []
    for _ in range(5):
        t0 = time.perf_counter()
        rl.bellman_optimality_backup(P, R, V, GAMMA, check=False)
        sweeps.append(time.perf_counter() - t0)
    sweep = float(np.median(sweeps))
    moved = ours_bytes + V.nbytes + S * 8 + S * 8  # model + V read + V_new and policy written

    results = {}
    vi, t, mem = timed(lambda: rl.value_iteration(P, R, GAMMA, tol=TOL))
    results["nimbleops value_iteration"] = (vi.V, t, vi.iterations, mem)
    mpi, t, mem = timed(lambda: rl.modified_policy_iteration(P, R, GAMMA, tol=TOL))
    results["nimbleops modified_policy_iteration"] = (mpi.V, t, mpi.iterations, mem)
    if args.peers:
        (V_s, _, n_s), t, mem = timed(lambda: scipy_value_iteration(M, R, S, A))
        results["scipy.sparse value iteration"] = (V_s, t, n_s, mem)
        try:
            import quantecon as qe
        except ImportError as e:
            print(f"QuantEcon skipped: {e}")
        else:
            states, actions = np.repeat(np.arange(S), A), np.tile(np.arange(A), S)  # the state-action pairs
            ddp, t_build, mem = timed(lambda: qe.markov.DiscreteDP(R.reshape(-1), M, GAMMA, states, actions))
            print(f"QuantEcon DiscreteDP built in {t_build:.1f} s, {mem:.2f} GB")
            for method in ("value_iteration", "modified_policy_iteration"):
                res, t, mem = timed(lambda: ddp.solve(method, epsilon=TOL, max_iter=100_000))
                results[f"QuantEcon {method}"] = (res.v, t, res.num_iter, mem)

    V_ref = results["nimbleops value_iteration"][0]
    print(f"\n{'solver':40s} {'time':>9s} {'iterations':>10s} {'memory added':>13s} {'max |V - V_vi|':>15s}")
    for name, (V_x, t, n, mem) in results.items():
        print(f"{name:40s} {t:8.2f}s {int(n):10d} {mem:10.2f} GB {np.abs(V_x - V_ref).max():15.2e}")
    for name, (_, t, _, _) in results.items():  # each peer against nimbleops' solver of the same method
        if not name.startswith("nimbleops"):
            ours = "modified_policy_iteration" if "modified" in name else "value_iteration"
            print(f"{name}: {t / results['nimbleops ' + ours][1]:.1f}x the time of nimbleops {ours}")
    copy = bench.memory_bandwidth()["copy"]  # last: its buffers would count in the peak memory above
    print(f"one nimbleops sweep: {sweep * 1e3:.1f} ms, {moved / sweep / 1e9:.1f} GB/s moved, against the copy "
          f"bandwidth of {copy:.1f} GB/s, on {nimbleops.get_num_threads()} threads")
    agree = all(np.abs(V_x - V_ref).max() < TOL for V_x, _, _, _ in results.values())
    print(f"all solvers within tol = {TOL} of each other: {agree}")
    return agree


if __name__ == "__main__":
    main()
