"""Bellman backups and solvers: dense, batched, sparse (250,000 and 4 million states), and the reference."""
from nimbleops.bench import (batched_workloads, dense_workloads, large_sparse_workloads, reference_workloads,
                             sparse_workloads)

from .conftest import parametrize_workloads, run_case


@parametrize_workloads(dense_workloads() + batched_workloads() + sparse_workloads(quick=False)
                       + large_sparse_workloads() + reference_workloads())
def test_bellman(benchmark, workload, impl, fn):
    run_case(benchmark, workload, impl, fn)
