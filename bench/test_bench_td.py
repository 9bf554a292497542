"""Tabular TD updates (vs numpy.add.at) and eligibility-trace steps (vs numpy)."""
from nimbleops.bench import td_workloads, trace_workloads

from .conftest import parametrize_workloads, run_case


@parametrize_workloads(td_workloads() + trace_workloads())
def test_td(benchmark, workload, impl, fn):
    run_case(benchmark, workload, impl, fn)
