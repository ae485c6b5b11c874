"""The DeviceClasses of NVIDIA's DRA driver (``gpu.nvidia.com``, ``mig.nvidia.com``) for the
sandbox: the package data of ``gpu_operator.dra`` (``deviceclasses.yaml``), which the operator
applies with the DRA driver."""

from __future__ import annotations

from gpu_operator.dra.classes import SOURCE, device_classes

__all__ = ["SOURCE", "device_classes"]
