"""Position-sensitive RoI align / pool on ThunderNet's head (vs torchvision and the reference)."""
from nimbleops.bench import vision_workloads

from .conftest import parametrize_workloads, run_case


@parametrize_workloads(vision_workloads())
def test_vision(benchmark, workload, impl, fn):
    run_case(benchmark, workload, impl, fn)
