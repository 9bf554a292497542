"""Bellman backups and solvers: nimbleops vs the peers installed, one pytest-benchmark group per
workload (the same workloads as ``python -m nimbleops.bench``)."""
from __future__ import annotations

import pytest

from nimbleops.bench import workloads

CASES = [(w, name, fn) for w in workloads(quick=False) for name, fn in [("nimbleops", w.ours)] + list(w.peers.items())]


@pytest.mark.parametrize("workload,impl,fn", CASES, ids=[f"{w.group}-{w.name}-{impl}" for w, impl, _ in CASES])
def test_bellman(benchmark, workload, impl, fn):
    benchmark.group = workload.name
    benchmark.extra_info["impl"] = impl
    if workload.bytes_moved:
        benchmark.extra_info["bytes"] = workload.bytes_moved
    benchmark.pedantic(fn, rounds=5 if "iteration" in workload.name else 20, warmup_rounds=1)
