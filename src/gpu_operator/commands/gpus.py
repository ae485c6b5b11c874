"""``gpu-operator gpus``: what the node has, as a table or as JSON.

The JSON shape is a contract (other tools and the sandbox read it): camelCase keys,
``pciDeviceId`` as ``0xDDDDVVVV``, profile ``memoryMiB`` = NVML's ``memorySizeMB``, and
``migDevices`` empty when MIG is off. A GPU that fell off the bus is listed with ``lost: true``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from gpu_operator.errors import GpuLostError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuInfo, GpuInstanceProfile, MigDevice, SystemInfo


def profile_json(p: GpuInstanceProfile) -> dict[str, Any]:
    return {
        "name": p.name,
        "id": p.id,
        "instances": p.instance_count,
        "memoryMiB": p.memory_mib,
        "multiprocessors": p.multiprocessors,
        "copyEngines": p.copy_engines,
        "decoders": p.decoders,
        "encoders": p.encoders,
        "jpegs": p.jpegs,
        "ofas": p.ofas,
        "sliceCount": p.slice_count,
        "nvmlProfile": p.nvml_profile,
        "placements": [{"start": pl.start, "size": pl.size} for pl in p.placements],
    }


def mig_device_json(d: MigDevice) -> dict[str, Any]:
    return {
        "uuid": d.uuid,
        "index": d.index,
        "profile": d.profile,
        "gpuInstanceId": d.gpu_instance_id,
        "computeInstanceId": d.compute_instance_id,
        "placement": {"start": d.placement.start, "size": d.placement.size},
        "memoryMiB": d.memory_mib,
        "multiprocessors": d.multiprocessors,
    }


def gpu_json(
    g: GpuInfo, profiles: list[GpuInstanceProfile], devices: list[MigDevice]
) -> dict[str, Any]:
    major, minor = g.compute_capability
    return {
        "index": g.index,
        "uuid": g.uuid,
        "name": g.name,
        "pciBusId": g.pci_bus_id,
        "pciDeviceId": g.pci_device_id_hex,
        "pciSubsystemId": g.pci_subsystem_id_hex,
        "minorNumber": g.minor_number,
        "memoryMiB": g.memory_mib,
        "computeCapability": f"{major}.{minor}",
        "architecture": g.architecture,
        "brand": g.brand,
        "serial": g.serial,
        "vbiosVersion": g.vbios_version,
        "numaNode": g.numa_node,
        "migCapable": g.mig_capable,
        "migMode": None
        if g.mig_mode is None
        else {
            "current": g.mig_mode.current.value,
            "pending": g.mig_mode.pending.value,
        },
        "migProfiles": [profile_json(p) for p in profiles],
        "migDevices": [mig_device_json(d) for d in devices],
    }


def inventory(nvml: Nvml) -> dict[str, Any]:
    """The whole node as the ``--json`` shape."""
    system: SystemInfo = nvml.system()
    gpus: list[dict[str, Any]] = []
    for index in range(nvml.device_count()):
        try:
            info = nvml.gpu(index)
            gpus.append(gpu_json(info, nvml.gi_profiles(index), nvml.mig_devices(index)))
        except GpuLostError as error:
            gpus.append({"index": index, "lost": True, "error": str(error)})
    return {
        "driverVersion": system.driver_version,
        "nvmlVersion": system.nvml_version,
        "cudaDriverVersion": system.cuda_driver_version,
        "gpus": gpus,
    }


def _render(data: dict[str, Any], console: Console, show_profiles: bool) -> None:
    cuda = data["cudaDriverVersion"]
    console.print(
        f"Driver {data['driverVersion']}  CUDA {cuda // 1000}.{(cuda % 1000) // 10}  "
        f"{len(data['gpus'])} GPU(s)"
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("GPU", "Name", "UUID", "Bus", "Memory", "CC", "MIG"):
        table.add_column(column)
    for g in data["gpus"]:
        if g.get("lost"):
            table.add_row(str(g["index"]), "[red]lost[/red]", g["error"], "", "", "", "")
            continue
        mig = g["migMode"]
        mig_text = (
            "n/a"
            if mig is None
            else mig["current"]
            + (f" (pending {mig['pending']})" if mig["pending"] != mig["current"] else "")
        )
        table.add_row(
            str(g["index"]),
            g["name"],
            g["uuid"],
            g["pciBusId"],
            f"{g['memoryMiB']} MiB",
            g["computeCapability"],
            mig_text,
        )
    console.print(table)
    devices = [(g["index"], d) for g in data["gpus"] if not g.get("lost") for d in g["migDevices"]]
    if devices:
        mig_table = Table(
            "GPU",
            "Slot",
            "Profile",
            "GI",
            "CI",
            "Placement",
            "Memory",
            "UUID",
            title="MIG devices",
            header_style="bold",
        )
        for index, d in devices:
            pl = d["placement"]
            mig_table.add_row(
                str(index),
                str(d["index"]),
                d["profile"],
                str(d["gpuInstanceId"]),
                str(d["computeInstanceId"]),
                f"{pl['start']}:{pl['size']}",
                f"{d['memoryMiB']} MiB",
                d["uuid"],
            )
        console.print(mig_table)
    if show_profiles:
        # GPUs of one model share one table: "GPUs 0-7" rather than eight copies.
        by_model: dict[str, list[dict[str, Any]]] = {}
        for g in data["gpus"]:
            if not g.get("lost") and g["migProfiles"]:
                by_model.setdefault(g["pciDeviceId"], []).append(g)
        for group in by_model.values():
            indexes = ", ".join(str(g["index"]) for g in group)
            title = f"GPU {indexes} ({group[0]['name']}) MIG profiles"
            profiles = Table(
                "Profile",
                "ID",
                "Instances",
                "Memory",
                "SMs",
                "CE",
                "DEC/ENC/JPG/OFA",
                "Placements",
                title=title,
                header_style="bold",
            )
            for p in group[0]["migProfiles"]:
                starts = ",".join(str(pl["start"]) for pl in p["placements"])
                size = p["placements"][0]["size"] if p["placements"] else 0
                profiles.add_row(
                    p["name"],
                    str(p["id"]),
                    str(p["instances"]),
                    f"{p['memoryMiB']} MiB",
                    str(p["multiprocessors"]),
                    str(p["copyEngines"]),
                    f"{p['decoders']}/{p['encoders']}/{p['jpegs']}/{p['ofas']}",
                    f"{{{starts}}}:{size}",
                )
            console.print(profiles)


def gpus_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the inventory as JSON."),
    profiles: bool = typer.Option(False, "--profiles", help="Also list each GPU's MIG profiles."),
) -> None:
    """Show the node's GPUs (real, or simulated with --sim / GPU_OPERATOR_SIM)."""
    settings: HardwareSettings = ctx.obj
    with Nvml.open(settings) as nvml:
        data = inventory(nvml)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        # Wide enough for full UUIDs when piped; a terminal keeps its own width.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        _render(data, console, profiles)
