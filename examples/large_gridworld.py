"""A sparse gridworld of 4 million states (2000 x 2000, 4 actions, about 4 successors each),
solved with rl.value_iteration and rl.modified_policy_iteration, against the same solvers in
scipy.sparse and in QuantEcon's DiscreteDP.

The model is the benchmark's gridworld (nimbleops.bench.gridworld): the intended move with
probability 0.7, each perpendicular move and staying put 0.1 (walls keep the agent in place),
reward -1 a step, an absorbing goal in a corner. The script reports, for each solver, its time,
its sweeps and its model's memory, the peak memory of the process after each stage, and the
bandwidth of one nimbleops sweep (the bytes of the CSR model, the rewards and the values it
reads and writes) against the machine's copy bandwidth. Every solver must reach the same
values (within the tolerance) and the same policy where the values leave a margin.

    python examples/large_gridworld.py [--n 2000] [--peers] [--threads N]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import nimbleops
from nimbleops import bench, rl

GAMMA, TOL = 0.95, 1e-6


def peak_rss_gb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


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
    (P, R, M), build = timed(lambda: bench.gridworld(args.n))
    S, A = args.n * args.n, 4
    ours_bytes = P.indptr.nbytes + P.indices.nbytes + P.data.nbytes + R.nbytes
    print(f"gridworld {args.n} x {args.n}: S = {S:,}, A = {A}, {P.nnz / (S * A):.2f} successors a row, "
          f"built in {build:.1f} s; peak memory {peak_rss_gb():.2f} GB")
    print(f"nimbleops model {ours_bytes / 1e9:.2f} GB (CSR, int32 next states, float64); "
          f"scipy CSR {(M.indptr.nbytes + M.indices.nbytes + M.data.nbytes + R.nbytes) / 1e9:.2f} GB")

    V = np.zeros(S)
    rl.bellman_optimality_backup(P, R, V, GAMMA)  # warm-up (and the one-time model check)
    sweeps = []
    for _ in range(5):
        _, t = timed(lambda: rl.bellman_optimality_backup(P, R, V, GAMMA, check=False))
        sweeps.append(t)
    sweep = float(np.median(sweeps))
    moved = ours_bytes + V.nbytes + S * 8 + S * 8  # model + V read + V_new and policy written

    results = {}
    vi, t = timed(lambda: rl.value_iteration(P, R, GAMMA, tol=TOL))
    results["nimbleops value_iteration"] = (vi.V, vi.policy, t, vi.iterations)
    mpi, t = timed(lambda: rl.modified_policy_iteration(P, R, GAMMA, tol=TOL))
    results["nimbleops modified_policy_iteration"] = (mpi.V, mpi.policy, t, mpi.iterations)
    print(f"after the nimbleops solvers: peak memory {peak_rss_gb():.2f} GB")
    if args.peers:
        (V_s, pol_s, n_s), t = timed(lambda: scipy_value_iteration(M, R, S, A))
        results["scipy.sparse value iteration"] = (V_s, pol_s, t, n_s)
        print(f"after scipy.sparse: peak memory {peak_rss_gb():.2f} GB")
        try:
            import quantecon as qe
        except ImportError as e:
            print(f"QuantEcon skipped: {e}")
        else:
            ddp, t_build = timed(lambda: qe.markov.DiscreteDP(R.reshape(-1), M, GAMMA, np.repeat(np.arange(S), A),
                                                              np.tile(np.arange(A), S)))
            print(f"QuantEcon DiscreteDP built in {t_build:.1f} s; peak memory {peak_rss_gb():.2f} GB")
            for method in ("value_iteration", "modified_policy_iteration"):
                res, t = timed(lambda: ddp.solve(method, epsilon=TOL, max_iter=100_000))
                results[f"QuantEcon {method}"] = (res.v, res.sigma, t, res.num_iter)
            print(f"after QuantEcon: peak memory {peak_rss_gb():.2f} GB")

    V_ref = results["nimbleops value_iteration"][0]
    print(f"\n{'solver':40s} {'time':>9s} {'sweeps':>7s} {'max |V - V_vi|':>15s}")
    for name, (V_x, pol_x, t, n) in results.items():
        print(f"{name:40s} {t:8.2f}s {int(n):7d} {np.abs(V_x - V_ref).max():15.2e}")
    for name, (_, _, t, _) in results.items():  # each peer against nimbleops' solver of the same method
        if not name.startswith("nimbleops"):
            ours = "modified_policy_iteration" if "modified" in name else "value_iteration"
            print(f"{name}: {t / results['nimbleops ' + ours][2]:.1f}x the time of nimbleops {ours}")
    copy = bench.memory_bandwidth()["copy"]  # last: its buffers would count in the peak memory above
    print(f"one nimbleops sweep: {sweep * 1e3:.1f} ms, {moved / sweep / 1e9:.1f} GB/s moved, against the copy "
          f"bandwidth of {copy:.1f} GB/s, on {nimbleops.get_num_threads()} threads")
    agree = all(np.abs(V_x - V_ref).max() < TOL for V_x, _, _, _ in results.values())
    print(f"all solvers within tol = {TOL} of each other: {agree}")
    return agree


if __name__ == "__main__":
    main()
