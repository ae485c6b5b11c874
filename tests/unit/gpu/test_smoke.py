from collections.abc import Callable

from gpu_operator.gpu import Nvml


def test_a_simulated_h200_enumerates_one_gpu(open_sim: Callable[..., Nvml]) -> None:
    nvml = open_sim("h200")
    assert [g.name for g in nvml.gpus()] == ["NVIDIA H200"]
