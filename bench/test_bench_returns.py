"""Return estimators: GAE and lambda-returns on a PPO rollout, vs the numpy loop and torchrl."""
from nimbleops.bench import returns_workloads

from .conftest import parametrize_workloads, run_case


@parametrize_workloads(returns_workloads())
def test_returns(benchmark, workload, impl, fn):
    run_case(benchmark, workload, impl, fn)
