"""Read the node into a ``NodeView``: the NVML facade (GPUs, MIG devices and their GI/CI
profiles, PCI class), and the machine-type file. The only I/O of labelling.
"""

from __future__ import annotations

from pathlib import Path

from gpu_operator.discovery.view import GpuView, MigView, NodeView
from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import GpuInfo


def read_machine_type(path: Path) -> str | None:
    """The machine type file's text (``/sys/class/dmi/id/product_name``); ``None`` when it can't
    be read (labelled ``unknown``, as upstream)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _gpu_view(info: GpuInfo) -> GpuView:
    return GpuView(
        index=info.index,
        name=info.name,
        memory_mib=info.memory_mib,
        compute_capability=info.compute_capability,
        family=info.architecture,
        mig_capable=info.mig_capable,
        mig_enabled=info.mig_mode is not None and info.mig_mode.enabled,
        pci_class=info.pci_class,
    )


def _mig_views(nvml: Nvml, index: int) -> list[MigView]:
    """MIG devices with the attributes upstream reads per MIG device: memory and engines of
    the GPU instance, multiprocessors and slices of the compute instance."""
    profiles = {p.id: p for p in nvml.gi_profiles(index)}
    ci_slices = {
        (gi.id, ci.id): ci.placement.size
        for gi in nvml.gpu_instances(index)
        for ci in gi.compute_instances
    }
    views = []
    for mig in nvml.mig_devices(index):
        gi = profiles[mig.gi_profile_id]
        views.append(
            MigView(
                parent_index=index,
                profile=mig.profile,
                memory_mb=gi.memory_mib,
                multiprocessors=mig.multiprocessors,
                gi_slices=gi.slice_count,
                ci_slices=ci_slices.get(
                    (mig.gpu_instance_id, mig.compute_instance_id), gi.slice_count
                ),
                copy_engines=gi.copy_engines,
                decoders=gi.decoders,
                encoders=gi.encoders,
                jpegs=gi.jpegs,
                ofas=gi.ofas,
            )
        )
    return views


def observe(nvml: Nvml) -> NodeView:
    """The node as the label rules see it. vGPU guests are not detected yet (``vgpu`` stays
    ``None``, labelled ``vgpu.present=false``)."""
    system = nvml.system()
    gpus = [_gpu_view(info) for info in nvml.gpus()]
    migs = [m for g in gpus if g.mig_enabled for m in _mig_views(nvml, g.index)]
    return NodeView(
        driver_version=system.driver_version,
        cuda_driver_version=system.cuda_driver_version,
        gpus=tuple(gpus),
        migs=tuple(migs),
    )
