"""ThunderNet at 320 x 320 (inference batch 1, training step batch 8) and the converted torchvision
ShuffleNetV2 (vs torch eager, torch.compile, onnxruntime / OpenVINO where installed)."""
from nimbleops.bench import model_workloads

from .conftest import parametrize_workloads, run_case


@parametrize_workloads(model_workloads(full=True))
def test_models(benchmark, workload, impl, fn):
    run_case(benchmark, workload, impl, fn)
