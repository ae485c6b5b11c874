"""The DeviceClasses of NVIDIA's DRA driver (``gpu.nvidia.com``, ``mig.nvidia.com``), shipped as
package data (``deviceclasses.yaml``): the operator applies them with the DRA driver's
DaemonSet, the sandbox's scheduler and tests read them. Pure (reads package data)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

Obj = dict[str, Any]
SOURCE = "deviceclasses.yaml"


def device_classes() -> list[Obj]:
    """The DeviceClass objects, in file order."""
    text = resources.files(__package__).joinpath(SOURCE).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]
