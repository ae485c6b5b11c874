"""``gpu-operator sim``: fault injection on a simulated node (GPU_OPERATOR_SIM must be set).

These change the shared state of the simulated node, so every agent simulating that node (the
device plugin's health watch, the exporter, the MIG manager) sees the fault, as on real hardware.
"""

from __future__ import annotations

import json

import typer

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore

app = typer.Typer(
    help="Inject faults into a simulated node (needs --sim or GPU_OPERATOR_SIM).",
    no_args_is_help=True,
)


def _store(ctx: typer.Context) -> StateStore:
    settings: HardwareSettings = ctx.obj
    if not settings.simulated:
        raise ConfigError(
            "'gpu-operator sim' works on a simulated node: set GPU_OPERATOR_SIM or pass --sim"
        )
    # Opening NVML creates the node's state on first use, exactly as an agent would.
    Nvml.open(settings).close()
    return StateStore(settings.state_path())


@app.command()
def xid(
    ctx: typer.Context,
    gpu: int = typer.Argument(..., help="GPU index."),
    code: int = typer.Option(
        ..., "--code", help="XID code, e.g. 79 (fallen off the bus), 48 (DBE), 13."
    ),
    gi: int | None = typer.Option(
        None, "--gi", help="GPU instance id, for an XID on a MIG device."
    ),
    ci: int | None = typer.Option(None, "--ci", help="Compute instance id within --gi."),
) -> None:
    """Inject an XID critical error event."""
    faults.inject_xid(_store(ctx), gpu, code, gi, ci)
    typer.echo(f"GPU {gpu}: XID {code} injected")


@app.command()
def ecc(
    ctx: typer.Context,
    gpu: int = typer.Argument(..., help="GPU index."),
    double_bit: bool = typer.Option(
        False, "--double-bit", help="Uncorrectable (DBE) instead of SBE."
    ),
) -> None:
    """Inject an ECC error (counters and event)."""
    faults.inject_ecc(_store(ctx), gpu, double_bit=double_bit)
    typer.echo(f"GPU {gpu}: {'double' if double_bit else 'single'}-bit ECC error injected")


@app.command()
def lose(ctx: typer.Context, gpu: int = typer.Argument(..., help="GPU index.")) -> None:
    """Make a GPU fall off the bus (XID 79, then GPU-is-lost on every call)."""
    faults.lose_gpu(_store(ctx), gpu)
    typer.echo(f"GPU {gpu}: lost")


@app.command()
def reset(ctx: typer.Context, gpu: int = typer.Argument(..., help="GPU index.")) -> None:
    """Reset a GPU like `nvidia-smi -r`: applies a pending MIG mode, clears instances and loss."""
    faults.reset_gpu(_store(ctx), gpu)
    typer.echo(f"GPU {gpu}: reset")


@app.command()
def process(
    ctx: typer.Context,
    gpu: int = typer.Argument(..., help="GPU index."),
    start: bool = typer.Option(False, "--start", help="Start a simulated CUDA process."),
    stop: bool = typer.Option(False, "--stop", help="Stop processes (all, or --pid)."),
    pid: int | None = typer.Option(None, "--pid", help="The process to stop."),
    gi: int | None = typer.Option(None, "--gi", help="Run on this GPU instance (MIG mode)."),
    memory_mib: int = typer.Option(1024, "--memory-mib", help="GPU memory the process uses."),
) -> None:
    """Start or stop a simulated process on a GPU or MIG device."""
    if start == stop:
        raise ConfigError("gpu-operator sim process: give exactly one of --start or --stop")
    store = _store(ctx)
    if start:
        new_pid = faults.start_process(store, gpu, gi=gi, memory_mib=memory_mib)
        typer.echo(f"GPU {gpu}: process {new_pid} started")
    else:
        count = faults.stop_processes(store, gpu, pid)
        typer.echo(f"GPU {gpu}: {count} process(es) stopped")


@app.command()
def state(ctx: typer.Context) -> None:
    """Print where the simulated node's state lives, and the state itself."""
    store = _store(ctx)
    typer.echo(json.dumps({"path": str(store.path), "state": store.read()}, indent=1))
