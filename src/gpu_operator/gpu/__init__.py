"""The NVML facade: the one way every operand talks to GPUs, real or simulated.

    from gpu_operator.gpu import Nvml
    with Nvml.open() as nvml:          # GPU_OPERATOR_SIM selects a simulated node
        for gpu in nvml.gpus(): ...

Only this package imports ``pynvml``. ``Nvml`` is assembled in layers, one module each:
``session`` (init, errors, inventory) < ``instances`` (MIG) < ``counters`` (telemetry, GPM)
< ``watching`` (events, topology). Records are in ``records``; profile names in ``naming``;
backend selection in ``backend``; the simulator in ``fake``.

The names below are loaded on first use, so ``HardwareSettings`` (which every command's root
reads) costs no import of the facade's layers in a command that never opens NVML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpu_operator.lazy import lazy_getattr

if TYPE_CHECKING:
    from gpu_operator.gpu.backend import HardwareSettings
    from gpu_operator.gpu.watching import EventWatcher, Nvml

__all__ = ["EventWatcher", "HardwareSettings", "Nvml"]

_HOMES = {
    "EventWatcher": "gpu_operator.gpu.watching",
    "HardwareSettings": "gpu_operator.gpu.backend",
    "Nvml": "gpu_operator.gpu.watching",
}


__getattr__ = lazy_getattr(__name__, _HOMES, globals())
