"""Lightweight convolutions and channel shuffles on SNet146 shapes (vs torch)."""
from nimbleops.bench import conv_workloads

from .conftest import parametrize_workloads, run_case


@parametrize_workloads(conv_workloads())
def test_conv(benchmark, workload, impl, fn):
    run_case(benchmark, workload, impl, fn)
