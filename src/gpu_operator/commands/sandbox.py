"""``gpu-operator sandbox``: the simulated cluster. ``up`` runs API server emulator, simulated
GPU nodes and the chart's operator in the foreground; ``down`` stops it; ``status`` shows it;
``demo`` runs the seed story and exits; ``apiserver`` runs the API server emulator alone."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import typer
import yaml
from rich.console import Console

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox.apiserver import ApiServer

app = typer.Typer(
    help="The simulated cluster: an API server emulator and simulated nodes.", no_args_is_help=True
)

DEFAULT_KUBECONFIG = Path("~/.kube/gpu-operator-sandbox.yaml")


async def _serve(server: ApiServer, kubeconfig: Path) -> None:
    try:
        await server.start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--port {server.port}: {server.host}:{server.port} is in use"
            ) from error
        raise ConfigError(f"cannot listen on {server.host}:{server.port}: {error}") from error
    server.write_kubeconfig(kubeconfig)
    typer.echo(f"API server emulator listening on {server.url}", err=False)
    typer.echo(f"kubeconfig: {kubeconfig}")
    typer.echo(f"try: kubectl --kubeconfig {kubeconfig} get nodes   (Ctrl-C stops)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


@app.command("apiserver")
def apiserver_command(
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1; 0 picks a free one."),
    kubeconfig: Path = typer.Option(
        DEFAULT_KUBECONFIG, "--kubeconfig", help="Where to write a kubeconfig for the emulator."
    ),
    token: str | None = typer.Option(
        None, "--token", help="Require this bearer token (written into the kubeconfig)."
    ),
    snapshot: Path | None = typer.Option(
        None, "--snapshot", help="JSON file: loaded on start if present, written on exit."
    ),
    bookmark_interval: float = typer.Option(
        60.0, "--bookmark-interval", help="Seconds between watch bookmarks."
    ),
) -> None:
    """Run the Kubernetes API server emulator in the foreground."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be between 0 and 65535")
    if bookmark_interval <= 0:
        raise ConfigError(f"--bookmark-interval {bookmark_interval}: must be > 0 seconds")
    server = ApiServer(
        port=port, token=token, snapshot=snapshot, bookmark_interval_s=bookmark_interval
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, kubeconfig.expanduser()))


DEFAULT_DIR = Path(tempfile.gettempdir()) / f"gpu-operator-sandbox-{os.getuid()}"
PID_FILE = "sandbox.pid"


def _on_stop_signals(first: Callable[[int], None]) -> None:
    """SIGINT and SIGTERM: the first calls ``first`` (a graceful stop: every pod's preStop,
    SIGTERM, SIGKILL at its grace period); more of them are ignored while it stops (`timeout`
    sends its signal twice: to the command, then to its process group). SIGKILL stops it at
    once: the sandbox's reaper then ends whatever is left (``sandbox/reaper.py``)."""

    def again(signum: int, frame: FrameType | None) -> None:
        pass  # not SIG_IGN: what it starts meanwhile (preStop hooks) must not inherit that

    def graceful(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, again)
        first(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, graceful)


def _exit_on_signal(signum: int) -> None:
    raise SystemExit(128 + signum)  # unwinds the main thread through the sandbox's stop()


def _sandbox_pid(pid_file: Path) -> int | None:
    """The pid of the `sandbox up` process a pid file names, if it still runs (a SIGKILLed
    sandbox leaves its pid file, and its pid may since name another program)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"sandbox" in cmdline and b"up" in cmdline else None


def _console() -> Console:
    # Wide enough for kubectl-like tables when the output is a pipe (make demo | tee …).
    return Console(width=None if sys.stdout.isatty() else 200)


@app.command("up")
def up_command(
    nodes: str = typer.Option("dgx-a100:2", "--nodes", help="PRESET:COUNT,… (dgx-a100, h200, …)."),
    os_image: str = typer.Option("rocky:8.5", "--os", help="Every node's OS, ID:VERSION."),
    values: list[str] = typer.Option([], "--set", help="Helm values, as helm install --set."),
    directory: Path = typer.Option(DEFAULT_DIR, "--dir", help="The nodes' root directories."),
    kubeconfig: Path = typer.Option(
        DEFAULT_KUBECONFIG, "--kubeconfig", help="Where to write the kubeconfig."
    ),
    port: int = typer.Option(0, "--port", help="API server port on 127.0.0.1 (0: any free)."),
    driver_delay: float = typer.Option(
        2.0, "--driver-delay", help="Seconds the simulated driver takes to load."
    ),
    missing: list[str] = typer.Option(
        [], "--missing-image", help="Image glob the sandbox registry lacks (ImagePullBackOff)."
    ),
    no_chart: bool = typer.Option(
        False,
        "--no-chart",
        help="Install nothing: an empty cluster for your own `helm install` and kubectl.",
    ),
    namespace: str = typer.Option(
        "gpu-operator", "--namespace", "-n", help="Where the chart goes (without --no-chart)."
    ),
) -> None:
    """Start a simulated cluster, install the chart (unless --no-chart), run until Ctrl-C or
    `sandbox down`."""
    from gpu_operator.sandbox.cluster import Sandbox
    from gpu_operator.sandbox.nodes import parse_nodes
    from gpu_operator.sandbox.podspec import ImageCatalogue
    from gpu_operator.sandbox.reaper import default_reaper

    if no_chart and values:
        raise ConfigError("--set with --no-chart: nothing is installed with --no-chart")
    specs = parse_nodes(nodes, os_image)
    directory = directory.expanduser()
    if _sandbox_pid(directory / PID_FILE) is not None:
        raise ConfigError(
            f"a sandbox may already run from {directory} (pid file {directory / PID_FILE}); "
            "run `gpu-operator sandbox down` or pass another --dir"
        )
    if directory.exists() and any(directory.iterdir()):
        if not (directory / "kubeconfig").exists():
            raise ConfigError(f"--dir {directory}: not empty and not a sandbox's directory")
        shutil.rmtree(directory)  # a previous sandbox's nodes: start afresh
    sandbox = Sandbox(
        specs,
        directory,
        catalogue=ImageCatalogue(missing=tuple(missing)),
        driver_delay_s=driver_delay,
        port=port,
    )
    stop = threading.Event()
    _on_stop_signals(lambda _: stop.set())
    try:
        sandbox.start()
        target = kubeconfig.expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sandbox.kubeconfig, target)
        (directory / PID_FILE).write_text(f"{os.getpid()}\n{target}\n")
        if not no_chart:
            sandbox.install(values, namespace)
        typer.echo(f"sandbox: {len(specs)} GPU nodes, API server {sandbox.server.url}")
        typer.echo(f"kubeconfig: {target}")
        typer.echo(
            f"try: kubectl --kubeconfig {target} get pods -A   (Ctrl-C or `sandbox down` stops)"
        )
        if no_chart:
            from gpu_operator.sandbox.chart import chart_dir

            typer.echo(
                f"nothing installed: export KUBECONFIG={target}; helm install --wait "
                f"-n gpu-operator-resources --create-namespace gpu-operator {chart_dir()} "
                "--set …"
            )
        stop.wait()
    finally:
        typer.echo("sandbox: stopping every pod and the API server")
        try:
            sandbox.stop()
        finally:
            default_reaper().close()  # returns once nothing it started runs
            (directory / PID_FILE).unlink(missing_ok=True)


@app.command("down")
def down_command(
    directory: Path = typer.Option(DEFAULT_DIR, "--dir", help="The sandbox's directory."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for it to stop."),
) -> None:
    """Stop the sandbox that `sandbox up` runs (SIGTERM to its process, then wait)."""
    pid_file = directory.expanduser() / PID_FILE
    if not pid_file.exists():
        typer.echo(f"no sandbox runs from {directory} (no {PID_FILE})")
        return
    pid = _sandbox_pid(pid_file)
    try:
        if pid is None:
            raise ProcessLookupError
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        typer.echo(f"the sandbox of {pid_file} was gone (its reaper ended its pods); cleaned up")
        return
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_file.exists():
        raise ConfigError(f"sandbox process {pid} did not stop within {timeout:g}s")
    typer.echo("sandbox stopped")


@app.command("status")
def status_command(
    directory: Path = typer.Option(DEFAULT_DIR, "--dir", help="The sandbox's directory."),
) -> None:
    """Nodes, GPU resources, pods and the ClusterPolicy of the running sandbox."""
    from gpu_operator import views
    from gpu_operator.sandbox.demo import pod_table
    from gpu_operator.sandbox.rest import Rest

    config = directory.expanduser() / "kubeconfig"
    if not (directory.expanduser() / PID_FILE).exists() or not config.exists():
        raise ConfigError(
            f"no sandbox runs from {directory}: start one with `gpu-operator sandbox up`"
        )
    server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
    rest = Rest(server)
    console = _console()
    for node in rest.list("nodes"):
        resources = views.gpu_resources(node)
        shown = ", ".join(f"{k}: {v}" for k, v in resources.items()) or "no GPU resources"
        console.print(f"node {node['metadata']['name']}: {shown}")
    console.print(pod_table(rest))
    state, problems = views.policy_summary(
        rest.get("nvidia.com/v1/clusterpolicies", "cluster-policy")
    )
    console.print(f"ClusterPolicy: {state}" + "".join(f"\n  {p}" for p in problems))


@app.command("demo")
def demo_command(
    timeout: float = typer.Option(150.0, "--timeout", help="Give up after this many seconds."),
    keep: bool = typer.Option(False, "--keep", help="Keep the nodes' directories (logs)."),
) -> None:
    """The seed story: 2 Rocky 8.5 DGX A100 nodes, MIG all-balanced, a MIG pod and its metrics."""
    from gpu_operator.sandbox.demo import run_demo
    from gpu_operator.sandbox.reaper import default_reaper

    _on_stop_signals(_exit_on_signal)
    base = Path(tempfile.mkdtemp(prefix="gos-demo-"))
    console = _console()
    try:
        took = run_demo(console, base, timeout_s=timeout)
        console.print(f"\n[bold green]Seed story done in {took:.1f}s[/]")
    finally:
        default_reaper().close()  # whatever the story left running (a crash) goes now
        if keep:
            console.print(f"nodes' directories and container logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
