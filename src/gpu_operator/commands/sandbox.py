"""``gpu-operator sandbox``: the simulated cluster. ``apiserver`` runs the Kubernetes API server
emulator in the foreground and writes a kubeconfig for it (up/down/demo come with the sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
from pathlib import Path

import typer

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
