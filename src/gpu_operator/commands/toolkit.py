"""``gpu-operator toolkit install|uninstall|cdi-generate``: nvidia-ctk-installer's environment
variables and ``nvidia-ctk cdi generate``'s flags."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import typer

from gpu_operator.cli_settings import given, option
from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings
from gpu_operator.hostpaths import remap
from gpu_operator.settings_engine import Field, resolve
from gpu_operator.signal_wait import wait_for_signal
from gpu_operator.toolkit.host_files import write_atomically
from gpu_operator.toolkit.settings import ToolkitSettings

app = typer.Typer(help="Configure the container runtime for GPUs; write CDI specs.")


def _say(line: str) -> None:
    typer.echo(line, err=True)


@app.command("install")
def install_command(
    destination: str | None = typer.Argument(
        None,
        metavar="[DESTINATION]",
        help="Toolkit install directory, as NVIDIA's v1.x `nvidia-toolkit /usr/local/nvidia` "
        "takes it (default: ROOT / TOOLKIT_INSTALL_DIR).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say which files would change."),
) -> None:
    """Add the nvidia runtimes to the runtime RUNTIME names (nvidia-ctk-installer env vars)."""
    from gpu_operator.toolkit.install import install

    settings = toolkit_settings(destination)
    stop = threading.Event()
    if not dry_run and not settings.no_daemon:
        # Before any change: a signal that comes while installing still undoes the install.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, lambda *_: stop.set())
    changed = install(settings, log=_say, dry_run=dry_run)
    if dry_run:
        for path in changed:
            typer.echo(f"would change {path}")
        return
    if not settings.no_daemon:
        _daemon(settings, stop)


def _daemon(settings: ToolkitSettings, stop: threading.Event) -> None:
    """Stay up until SIGTERM/SIGINT/SIGHUP/SIGQUIT (``stop``), then undo the install
    (upstream's mode)."""
    from gpu_operator.toolkit.install import uninstall

    write_atomically(settings.pid_file, f"{os.getpid()}\n")
    _say("configured; waiting for a signal to undo the configuration")
    wait_for_signal(stop)
    uninstall(settings, log=_say)
    settings.pid_file.unlink(missing_ok=True)


def toolkit_settings(destination: str | None = None) -> ToolkitSettings:
    """The installer's settings from the environment (``destination``, the v1.x positional
    argument, wins over ``ROOT``), container paths mapped to this host's."""
    env = {**os.environ, "ROOT": destination} if destination else None
    return remap(
        ToolkitSettings.from_env(env),
        "root",
        "config",
        "drop_in",
        "socket",
        "host_root",
        "cdi_output_dir",
        "driver_root_ctr_path",
        "state_dir",
        "pid_file",
    )


@app.command("uninstall")
def uninstall_command() -> None:
    """Restore every file install changed (byte for byte when unchanged since)."""
    from gpu_operator.toolkit.install import uninstall

    uninstall(toolkit_settings(), log=_say)


def _dump(spec: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(spec, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(spec, sort_keys=False)


CDI_FIELDS: dict[str, Field[None]] = {
    "output": Field("--output", ("NVIDIA_CTK_CDI_OUTPUT_FILE_PATH",), Path, empty_is_unset=True),
    "driver_root": Field("--driver-root", ("NVIDIA_DRIVER_ROOT",), str, empty_is_unset=True),
    "dev_root": Field("--dev-root", ("NVIDIA_DEV_ROOT",), str, empty_is_unset=True),
}
"""``cdi-generate``'s options that a variable also sets, resolved by ``settings_engine``."""


@app.command("cdi-generate")
def cdi_generate_command(
    ctx: typer.Context,
    output: str | None = option(CDI_FIELDS["output"], help="File (default stdout)."),
    fmt: str = typer.Option("yaml", "--format", help="yaml or json."),
    mode: str = typer.Option("nvml", "--mode", help="nvml (devices) or management."),
    strategies: list[str] = typer.Option(
        ["index", "uuid"], "--device-name-strategy", help="index, uuid, type-index (repeatable)."
    ),
    vendor: str = typer.Option("nvidia.com", "--vendor"),
    device_class: str = typer.Option("gpu", "--class"),
    driver_root: str | None = option(CDI_FIELDS["driver_root"], default="/"),
    dev_root: str | None = option(CDI_FIELDS["dev_root"], default="/"),
    hook_path: str = typer.Option("/usr/bin/nvidia-cdi-hook", "--nvidia-cdi-hook-path"),
    disable_hook: bool = typer.Option(
        False, "--disable-hook", help="Hook-free: libraries by SONAME in one dir, LD_LIBRARY_PATH."
    ),
    no_all_device: bool = typer.Option(False, "--no-all-device"),
) -> None:
    """A CDI spec for this node's GPUs, compatible with ``nvidia-ctk cdi generate``."""
    from gpu_operator.gpu import Nvml
    from gpu_operator.toolkit.cdi_generate import (
        NAME_STRATEGIES,
        CdiOptions,
        generate,
        management_spec,
        parse_mig_minors,
    )
    from gpu_operator.toolkit.driver_tree import discover

    paths = resolve(CDI_FIELDS, given(CDI_FIELDS, ctx.params), os.environ, None).values
    output_file: Path | None = paths.get("output")
    driver_dir = Path(paths.get("driver_root", "/"))
    dev_dir: str = paths.get("dev_root", "/")
    if fmt not in ("yaml", "json"):
        raise ConfigError(f"--format {fmt!r}: expected yaml or json")
    if mode not in ("nvml", "management"):
        raise ConfigError(f"--mode {mode!r}: expected nvml or management")
    for strategy in strategies:
        if strategy not in NAME_STRATEGIES:
            raise ConfigError(
                f"--device-name-strategy {strategy!r}: expected one of {', '.join(NAME_STRATEGIES)}"
            )
    options = CdiOptions(
        vendor=vendor,
        device_class=device_class,
        name_strategies=tuple(strategies),
        hook_path=hook_path,
        hooks=not disable_hook,
        all_device=not no_all_device,
        dev_root=dev_dir,
        modeset=Path(dev_dir, "dev/nvidia-modeset").exists(),
    )
    hardware: HardwareSettings = ctx.obj or HardwareSettings.from_env()
    with Nvml.open(hardware) as nvml:
        version = nvml.system().driver_version
        gpus = nvml.gpus()
        migs = {
            g.index: nvml.mig_devices(g.index) for g in gpus if g.mig_mode and g.mig_mode.enabled
        }
    tree = discover(driver_dir, version)
    minors_file = Path("/proc/driver/nvidia-caps/mig-minors")
    minors = parse_mig_minors(minors_file.read_text()) if minors_file.exists() else None
    if mode == "management":
        nodes = [f"/dev/nvidia{g.minor_number}" for g in gpus]
        spec = management_spec(tree, nodes, options)
    else:
        spec = generate(gpus, migs, tree, options, mig_minors=minors)
    text = _dump(spec, fmt)
    if output_file is None:
        typer.echo(text, nl=False)
    else:
        write_atomically(output_file, text)
        _say(f"wrote {output_file}")
