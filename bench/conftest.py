"""pytest-benchmark suites: `pytest bench --benchmark-only` (not collected by the default run).
One file per op family; each workload of ``nimbleops.bench`` is a group holding nimbleops and
every peer found installed."""
from __future__ import annotations

import pytest


def parametrize_workloads(workloads):
    """The (workload, implementation, callable) cases of a list of nimbleops.bench workloads."""
    cases = [(w, name, fn) for w in workloads for name, fn in [("nimbleops", w.ours)] + list(w.peers.items())]
    return pytest.mark.parametrize("workload,impl,fn", cases, ids=[f"{w.group}-{w.name}-{impl}" for w, impl, _ in cases])


def run_case(benchmark, workload, impl, fn):
    benchmark.group = workload.name
    benchmark.extra_info["impl"] = impl
    if workload.bytes_moved:
        benchmark.extra_info["bytes"] = workload.bytes_moved
    slow = "iteration" in workload.name or "training step" in workload.name
    benchmark.pedantic(fn, rounds=5 if slow else 20, warmup_rounds=1)
