"""``gpu-operator validator``: upstream ``nvidia-validator``'s flags and environment variables
(``-c driver|toolkit|cuda|plugin|metrics``), and ``validator cuda-workload`` (vectorAdd).

Settings resolve as upstream's urfave/cli does, through ``settings_engine`` (``FIELDS``): flag >
variable > default; booleans in Go's words, bare (``-w``) or with a value (``--with-wait=false``);
a bad value is one line naming the flag or the variable, exit 1, before any status file is
touched."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from gpu_operator.cli_settings import KUBECONFIG, OPERATOR_NAMESPACE, given, go_flags, option
from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings
from gpu_operator.hostpaths import host_path
from gpu_operator.kube.settings import KubeSettings
from gpu_operator.names import VALIDATIONS_DIR as VALIDATIONS_PATH
from gpu_operator.settings_engine import (
    Field,
    from_env,
    integer,
    number,
    one_of,
    resolve,
    variable,
)
from gpu_operator.signal_wait import wait_for_signal
from gpu_operator.validator.running import Retry, run_component
from gpu_operator.validator.settings import COMPONENTS, MIG_STRATEGIES, ValidatorSettings
from gpu_operator.validator.status import COMPONENT_FILES, VALIDATIONS_DIR

app = typer.Typer(help=f"Validate the node's GPU stack; write {VALIDATIONS_PATH}/*-ready.")


def _say(line: str) -> None:
    typer.echo(line, err=True)


FIELDS: dict[str, Field[None]] = {
    "component": Field("--component", ("COMPONENT",), one_of(*COMPONENTS)),
    "with_wait": Field("--with-wait", ("WITH_WAIT",), bool),
    "with_workload": Field("--with-workload", ("WITH_WORKLOAD",), bool),
    "output_dir": Field("--output-dir", ("OUTPUT_DIR",), Path, empty_is_unset=True),
    "sleep_interval_s": Field("--sleep-interval-seconds", ("SLEEP_INTERVAL_SECONDS",), number),
    "mig_strategy": Field("--mig-strategy", ("MIG_STRATEGY",), one_of(*MIG_STRATEGIES)),
    "metrics_port": Field("--metrics-port", ("METRICS_PORT",), integer),
    "node_name": Field("--node-name", ("NODE_NAME",), str),
    "namespace": OPERATOR_NAMESPACE,
    "disable_dev_char_symlinks": Field(
        "--disable-dev-char-symlink-creation", ("DISABLE_DEV_CHAR_SYMLINK_CREATION",), bool
    ),
    "host_root": Field("--host-root", ("HOST_ROOT",), str, empty_is_unset=True),
    "driver_install_dir": Field(
        "--driver-install-dir", ("DRIVER_INSTALL_DIR",), str, empty_is_unset=True
    ),
    "driver_install_dir_ctr_path": Field(
        "--driver-install-dir-ctr-path", ("DRIVER_INSTALL_DIR_CTR_PATH",), Path, empty_is_unset=True
    ),
    "skip_gpu_init": Field(
        "--driver-validation-skip-gpu-init", ("DRIVER_VALIDATION_SKIP_GPU_INIT",), bool
    ),
    "cleanup_all": Field("--cleanup-all", ("CLEANUP_ALL",), bool),
    "skip_validation": Field("--skip-validation", ("SKIP_VALIDATION",), bool),
    "kubeconfig": KUBECONFIG,
}
"""``nvidia-validator``'s flags and variables (urfave/cli), resolved by ``settings_engine``."""
POD_FIELDS = {
    "image": variable("VALIDATOR_IMAGE"),
    "pull_policy": variable("VALIDATOR_IMAGE_PULL_POLICY"),
    "pull_secrets": variable("VALIDATOR_IMAGE_PULL_SECRETS"),
    "runtime_class": variable("VALIDATOR_RUNTIME_CLASS"),
}
"""The workload pods' settings: variables only, as upstream reads them (``os.Getenv``)."""


def validator_settings(
    flags: dict[str, Any], env: Mapping[str, str]
) -> tuple[ValidatorSettings, Path | None]:
    """The settings ``flags`` (text or ``None``) and ``env`` give, container paths mapped to this
    host's, and the kubeconfig; a bad value is one ``ConfigError`` naming flag or variable."""
    values = resolve(FIELDS, flags, env, None).values
    kubeconfig = values.pop("kubeconfig", None)
    if "component" not in values:
        raise ConfigError("-c/--component (COMPONENT) is required: " + ", ".join(COMPONENTS))
    for name in ("output_dir", "driver_install_dir_ctr_path"):
        if name in values:
            values[name] = host_path(values[name])
    settings = ValidatorSettings(
        **{"output_dir": host_path(VALIDATIONS_DIR), **values},
        host_root_ctr_path=host_path("/host"),
        dev_char_dir=host_path("/host-dev-char"),
    )
    return settings, kubeconfig


@app.callback(invoke_without_command=True, cls=go_flags(FIELDS, group=True))
def validator_command(
    ctx: typer.Context,
    component: str | None = option(FIELDS["component"], "-c", help="The component to validate."),
    with_wait: str | None = option(
        FIELDS["with_wait"], "-w", help="Retry until the check passes.", default="false"
    ),
    with_workload: str | None = option(
        FIELDS["with_workload"], "-l", help="Run the validation pod.", default="true"
    ),
    output_dir: str | None = option(FIELDS["output_dir"], "-o", default=VALIDATIONS_DIR),
    sleep_interval_s: str | None = option(FIELDS["sleep_interval_s"], "-s", default=5),
    mig_strategy: str | None = option(FIELDS["mig_strategy"], "-m", default="single"),
    metrics_port: str | None = option(FIELDS["metrics_port"], "-p", default=0),
    node_name: str | None = option(FIELDS["node_name"], "-n"),
    namespace: str | None = option(FIELDS["namespace"], "--ns", "-ns", default="gpu-operator"),
    disable_dev_char_symlinks: str | None = option(
        FIELDS["disable_dev_char_symlinks"], default="false"
    ),
    host_root: str | None = option(FIELDS["host_root"], default="/"),
    driver_install_dir: str | None = option(
        FIELDS["driver_install_dir"], default="/run/nvidia/driver"
    ),
    driver_install_dir_ctr_path: str | None = option(
        FIELDS["driver_install_dir_ctr_path"], default="/run/nvidia/driver"
    ),
    skip_gpu_init: str | None = option(
        FIELDS["skip_gpu_init"], "--skip-gpu-init", help="nvidia-smi --version only."
    ),
    cleanup_all: str | None = option(
        FIELDS["cleanup_all"], "-r", help="Empty the output directory first.", default="false"
    ),
    skip_validation: str | None = option(
        FIELDS["skip_validation"],
        help="Write the status file without checking (toolkit, cuda, plugin).",
        default="false",
    ),
    kubeconfig: str | None = option(FIELDS["kubeconfig"]),
    server: str | None = typer.Option(None, "--server", hidden=True),
) -> None:
    """Run one validation component (upstream's nvidia-validator)."""
    if ctx.invoked_subcommand is not None:
        return
    settings, kubeconfig_path = validator_settings(given(FIELDS, ctx.params), os.environ)
    pod_env = {
        "image": "gpu-operator:latest",
        "pull_policy": "IfNotPresent",
        "pull_secrets": "",
        "runtime_class": "",
        **from_env(POD_FIELDS, os.environ),
    }
    hardware: HardwareSettings = ctx.obj or HardwareSettings.from_env()
    kube = KubeSettings(server=server, kubeconfig=kubeconfig_path)
    from gpu_operator.validator.workloads import PodSettings

    pod = PodSettings(
        node=settings.node_name,
        namespace=settings.namespace,
        image=pod_env["image"],
        pull_policy=pod_env["pull_policy"],
        pull_secrets=tuple(s for s in pod_env["pull_secrets"].split(",") if s),
        runtime_class=pod_env["runtime_class"] or None,
        env=(("GPU_OPERATOR_SIM", hardware.sim),) if hardware.sim else (),
    )
    if settings.component == "metrics":
        _metrics(settings, hardware, kube)
        return
    _prepare_output_dir(settings)
    status_file = settings.output_dir / COMPONENT_FILES[settings.component]
    if settings.skip_validation:
        _say(f"skipping validation of {settings.component} as asked; writing {status_file}")
        run_component(status_file, lambda: "", log=_say)
        return
    from gpu_operator.commands.toolkit import toolkit_settings
    from gpu_operator.validator.components import check_for

    check = check_for(settings, hardware, kube, pod, toolkit_settings(), log=_say)
    run_component(
        status_file,
        check,
        retry=Retry(settings.with_wait, settings.sleep_interval_s),
        log=_say,
    )
    _say(f"{settings.component} validation passed")


def _prepare_output_dir(settings: ValidatorSettings) -> None:
    """Upstream's start: ``--cleanup-all`` empties the output directory, then it is created."""
    if settings.cleanup_all:
        shutil.rmtree(settings.output_dir, ignore_errors=True)
    settings.output_dir.mkdir(parents=True, exist_ok=True)


def _metrics(settings: ValidatorSettings, hardware: HardwareSettings, kube: KubeSettings) -> None:
    from gpu_operator.validator.components import node_status_exporter

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    exporter = node_status_exporter(settings, hardware, kube)
    port = exporter.serve(settings.metrics_port or 8000)
    _prepare_output_dir(settings)  # once the port is ours: a refused start writes nothing
    _say(f"node status exporter serving :{port}/metrics")
    wait_for_signal(stop)
    exporter.stop()


@app.command("cuda-workload")
def cuda_workload_command(ctx: typer.Context) -> None:
    """vectorAdd on the GPU (NVRTC + CUDA driver API); a simulated check under simulation."""
    from gpu_operator.validator.vector_add import run_workload

    root = ctx.find_root()
    hardware: HardwareSettings = root.obj or HardwareSettings.from_env()
    typer.echo(run_workload(hardware).summary())
