"""The NVML facade: the one way every operand talks to GPUs, real or simulated.

    from gpu_operator.gpu import Nvml
    with Nvml.open() as nvml:          # GPU_OPERATOR_SIM selects a simulated node
        for gpu in nvml.gpus(): ...

Only this package imports ``pynvml``. ``Nvml`` is assembled in layers, one module each:
``session`` (init, errors, inventory) < ``instances`` (MIG) < ``counters`` (telemetry, GPM)
< ``watching`` (events, topology). Records are in ``records``; profile names in ``naming``;
backend selection in ``backend``; the simulator in ``fake``.
"""

from gpu_operator.gpu.backend import HardwareSettings
from gpu_operator.gpu.watching import EventWatcher, Nvml

__all__ = ["EventWatcher", "HardwareSettings", "Nvml"]
