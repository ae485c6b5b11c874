"""Finding the device nodes that ``PASS_DEVICE_SPECS`` hands to containers (an adapter: reads
the host's ``/dev`` under the dev root and the driver's ``/proc`` files).

MIG capability nodes are resolved as upstream does: ``/proc/driver/nvidia-caps/mig-minors``
maps ``gpu<minor>/gi<gi>/access`` and ``gpu<minor>/gi<gi>/ci<ci>/access`` to a minor ``N``,
whose node is ``/dev/nvidia-caps/nvidia-cap<N>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gpu_operator.deviceplugin.allocation import DeviceNode, DeviceNodeTable
from gpu_operator.deviceplugin.resources import Device

CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


def parse_mig_minors(text: str) -> dict[str, int]:
    """``gpu0/gi1/access 12`` lines → ``{"gpu0/gi1/access": 12}``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def device_node_table(
    devices: Iterable[Device], *, dev_root: str = "/", proc_root: str = "/proc"
) -> DeviceNodeTable:
    """Nodes for ``devices``, only those that exist under ``dev_root`` (host paths keep the
    dev root, container paths don't)."""
    root = Path(dev_root)

    def node(relative: str) -> DeviceNode | None:
        host = root / "dev" / relative
        return DeviceNode(f"/dev/{relative}", str(host)) if host.exists() else None

    control = tuple(n for n in (node(name) for name in CONTROL_NODES) if n is not None)
    try:
        minors = parse_mig_minors((Path(proc_root) / "driver/nvidia-caps/mig-minors").read_text())
    except OSError:
        minors = {}
    per_device: dict[str, tuple[DeviceNode, ...]] = {}
    for device in devices:
        if device.uuid in per_device:
            continue
        found = [node(f"nvidia{device.minor}")]
        if device.is_mig:
            base = f"gpu{device.minor}/gi{device.gpu_instance_id}"
            for key in (f"{base}/access", f"{base}/ci{device.compute_instance_id}/access"):
                if key in minors:
                    found.append(node(f"nvidia-caps/nvidia-cap{minors[key]}"))
        per_device[device.uuid] = tuple(n for n in found if n is not None)
    return DeviceNodeTable(control=control, per_device=per_device)
