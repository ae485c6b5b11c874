"""``gpu-operator validator``: upstream ``nvidia-validator``'s flags and environment variables
(``-c driver|toolkit|cuda|plugin|metrics``), and ``validator cuda-workload`` (vectorAdd)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from gpu_operator.booleans import parse_bool
from gpu_operator.gpu import HardwareSettings
from gpu_operator.hostpaths import host_path
from gpu_operator.kube.settings import KubeSettings
from gpu_operator.names import VALIDATIONS_DIR as VALIDATIONS_PATH
from gpu_operator.validator.running import Retry, run_component
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.status import COMPONENT_FILES, VALIDATIONS_DIR

app = typer.Typer(help=f"Validate the node's GPU stack; write {VALIDATIONS_PATH}/*-ready.")


def _say(line: str) -> None:
    typer.echo(line, err=True)


@app.callback(invoke_without_command=True)
def validator_command(
    ctx: typer.Context,
    component: str | None = typer.Option(
        None, "-c", "--component", envvar="COMPONENT", help="driver, toolkit, cuda, plugin, metrics"
    ),
    with_wait: str = typer.Option("false", "-w", "--with-wait", envvar="WITH_WAIT"),
    with_workload: str = typer.Option("true", "-l", "--with-workload", envvar="WITH_WORKLOAD"),
    output_dir: Path = typer.Option(VALIDATIONS_DIR, "-o", "--output-dir", envvar="OUTPUT_DIR"),
    sleep_interval: float = typer.Option(
        5, "-s", "--sleep-interval-seconds", envvar="SLEEP_INTERVAL_SECONDS"
    ),
    mig_strategy: str = typer.Option("single", "-m", "--mig-strategy", envvar="MIG_STRATEGY"),
    metrics_port: int = typer.Option(0, "-p", "--metrics-port", envvar="METRICS_PORT"),
    node_name: str = typer.Option("", "-n", "--node-name", envvar="NODE_NAME"),
    namespace: str = typer.Option("gpu-operator", "--namespace", envvar="OPERATOR_NAMESPACE"),
    disable_dev_char: str = typer.Option(
        "false", "--disable-dev-char-symlink-creation", envvar="DISABLE_DEV_CHAR_SYMLINK_CREATION"
    ),
    host_root: str = typer.Option("/", "--host-root", envvar="HOST_ROOT"),
    driver_install_dir: str = typer.Option(
        "/run/nvidia/driver", "--driver-install-dir", envvar="DRIVER_INSTALL_DIR"
    ),
    driver_install_dir_ctr: Path = typer.Option(
        Path("/run/nvidia/driver"),
        "--driver-install-dir-ctr-path",
        envvar="DRIVER_INSTALL_DIR_CTR_PATH",
    ),
    skip_gpu_init: str = typer.Option(
        "false", "--skip-gpu-init", envvar="DRIVER_VALIDATION_SKIP_GPU_INIT"
    ),
    validator_image: str = typer.Option(
        "gpu-operator:latest", envvar="VALIDATOR_IMAGE", hidden=True
    ),
    pull_policy: str = typer.Option(
        "IfNotPresent", envvar="VALIDATOR_IMAGE_PULL_POLICY", hidden=True
    ),
    pull_secrets: str = typer.Option("", envvar="VALIDATOR_IMAGE_PULL_SECRETS", hidden=True),
    runtime_class: str = typer.Option("", envvar="VALIDATOR_RUNTIME_CLASS", hidden=True),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG"),
    server: str | None = typer.Option(None, "--server", hidden=True),
) -> None:
    """Run one validation component (upstream's nvidia-validator)."""
    if ctx.invoked_subcommand is not None:
        return
    if component is None:
        raise typer.BadParameter("required (or set COMPONENT)", param_hint="-c/--component")
    settings = ValidatorSettings(
        component=component,
        with_wait=parse_bool(with_wait, "WITH_WAIT"),
        with_workload=parse_bool(with_workload, "WITH_WORKLOAD"),
        output_dir=host_path(output_dir),
        sleep_interval_s=sleep_interval,
        mig_strategy=mig_strategy,
        metrics_port=metrics_port,
        node_name=node_name,
        namespace=namespace,
        disable_dev_char_symlinks=parse_bool(disable_dev_char, "DISABLE_DEV_CHAR_SYMLINK_CREATION"),
        host_root=host_root,
        driver_install_dir=driver_install_dir,
        driver_install_dir_ctr_path=host_path(driver_install_dir_ctr),
        host_root_ctr_path=host_path("/host"),
        dev_char_dir=host_path("/host-dev-char"),
        skip_gpu_init=parse_bool(skip_gpu_init, "DRIVER_VALIDATION_SKIP_GPU_INIT"),
    )
    hardware: HardwareSettings = ctx.obj or HardwareSettings.from_env()
    kube = KubeSettings(server=server, kubeconfig=kubeconfig)
    from gpu_operator.validator.workloads import PodSettings

    pod = PodSettings(
        node=node_name,
        namespace=namespace,
        image=validator_image,
        pull_policy=pull_policy,
        pull_secrets=tuple(s for s in pull_secrets.split(",") if s),
        runtime_class=runtime_class or None,
        env=(("GPU_OPERATOR_SIM", hardware.sim),) if hardware.sim else (),
    )
    if settings.component == "metrics":
        _metrics(settings, hardware, kube)
        return
    from gpu_operator.commands.toolkit import toolkit_settings
    from gpu_operator.validator.components import check_for

    check = check_for(settings, hardware, kube, pod, toolkit_settings(), log=_say)
    run_component(
        settings.output_dir / COMPONENT_FILES[settings.component],
        check,
        retry=Retry(settings.with_wait, settings.sleep_interval_s),
        log=_say,
    )
    _say(f"{settings.component} validation passed")


def _metrics(settings: ValidatorSettings, hardware: HardwareSettings, kube: KubeSettings) -> None:
    from gpu_operator.validator.components import node_status_exporter

    exporter = node_status_exporter(settings, hardware, kube)
    port = exporter.serve(settings.metrics_port or 8000)
    _say(f"node status exporter serving :{port}/metrics")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    exporter.stop()


@app.command("cuda-workload")
def cuda_workload_command(ctx: typer.Context) -> None:
    """vectorAdd on the GPU (NVRTC + CUDA driver API); a simulated check under simulation."""
    from gpu_operator.validator.vector_add import run_workload

    root = ctx.find_root()
    hardware: HardwareSettings = root.obj or HardwareSettings.from_env()
    typer.echo(run_workload(hardware).summary())
