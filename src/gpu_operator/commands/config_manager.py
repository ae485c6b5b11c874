"""``gpu-operator config-manager`` (executable ``config-manager``): upstream's device-plugin
sidecar. It installs the named config this node's ``nvidia.com/device-plugin.config`` label
selects from the plugin ConfigMap at ``CONFIG_FILE_DST``; as the init container
(``ONESHOT=true``) once, as the sidecar on every label change, sending ``SIGNAL`` to
``PROCESS_TO_SIGNAL`` in the pod (``shareProcessNamespace``) when the file changed."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import typer

from gpu_operator import logs
from gpu_operator.deviceplugin.configselect import (
    available,
    install,
    parse_fallbacks,
    select,
)
from gpu_operator.errors import ConfigError, GpuOperatorError
from gpu_operator.executables import EXECUTABLES
from gpu_operator.hostpaths import host_path
from gpu_operator.names import DEVICE_PLUGIN_CONFIG_LABEL

log = logging.getLogger("config-manager")


def _matches(argv: list[str], name: str) -> bool:
    """``name`` is the process: its own executable, or the subcommand our executable execs."""
    base = [os.path.basename(arg) for arg in argv[:3]]
    if name in base:
        return True
    sub = list(EXECUTABLES.get(name, ()))
    for i, arg in enumerate(base):
        if arg == "gpu-operator" and sub and argv[i + 1 : i + 1 + len(sub)] == sub:
            return True
    return False


def _environ(pid: str, proc: Path) -> dict[str, str]:
    try:
        raw = (proc / pid / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def find_processes(name: str, node_name: str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of ``name``. In a pod with a shared process namespace only the pod's processes are
    visible; where more are (the sandbox runs every node on one host), a process whose
    ``NODE_NAME`` names another node is not ours."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not _matches(argv, name):
            continue
        theirs = _environ(entry.name, proc).get("NODE_NAME")
        if theirs and node_name and theirs != node_name:
            continue
        found.append(int(entry.name))
    return sorted(found)


def _signal(name: str, signum: int, node_name: str) -> None:
    pids = find_processes(name, node_name)
    if not pids:
        log.warning(
            "no %s process to send signal %d to (it will read the config at start)", name, signum
        )
    for pid in pids:
        log.info("sending signal %d to %s (pid %d)", signum, name, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def config_manager_command(
    node_name: str = typer.Option("", envvar="NODE_NAME", help="This node (required)."),
    node_label: str = typer.Option(DEVICE_PLUGIN_CONFIG_LABEL, envvar="NODE_LABEL"),
    srcdir: str = typer.Option("/available-configs", envvar="CONFIG_FILE_SRCDIR"),
    dst: str = typer.Option("/config/config.yaml", envvar="CONFIG_FILE_DST"),
    default: str = typer.Option("", envvar="DEFAULT_CONFIG"),
    fallbacks: str = typer.Option("named,single", envvar="FALLBACK_STRATEGIES"),
    oneshot: bool = typer.Option(False, envvar="ONESHOT", help="Install once and exit."),
    send_signal: bool = typer.Option(False, envvar="SEND_SIGNAL"),
    signum: int = typer.Option(1, "--signal", envvar="SIGNAL"),
    process: str = typer.Option("nvidia-device-plugin", envvar="PROCESS_TO_SIGNAL"),
    server: str | None = typer.Option(None, "--server", help="API server URL."),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG"),
) -> None:
    """Install the device-plugin config this node's label selects (upstream's config-manager)."""
    from gpu_operator.kube import KubeSettings, build_client, get_node, watch_node

    logs.setup(logging.INFO)
    try:
        if not node_name:
            raise ConfigError("NODE_NAME is not set: config-manager must know its node")
        strategies = parse_fallbacks(fallbacks)
        source, target = host_path(srcdir), host_path(dst)
        client = build_client(KubeSettings(server=server, kubeconfig=kubeconfig))
        where = f"label {node_label} on node {node_name}"

        def apply(labels: dict[str, str]) -> bool:
            choice = select(
                labels.get(node_label, ""), default, strategies, available(source), where=where
            )
            changed = install(source, choice, target)
            log.info(
                "config %r (%s) %s %s",
                choice.name,
                choice.why,
                "installed at" if changed else "already at",
                dst,
            )
            return changed

        if oneshot:
            apply(dict(get_node(client, node_name).metadata.labels or {}))
            return
        current: str | None = None
        for change in watch_node(client, node_name):
            labels = dict(change.obj.metadata.labels or {})
            value = labels.get(node_label, "")
            if change.type == "DELETED" or value == current:
                continue
            current = value
            try:
                changed = apply(labels)
            except ConfigError as error:  # keep the config in place; the label can be fixed
                log.error("%s; keeping the current config", error)
                continue
            if changed and send_signal:
                _signal(process, signum, node_name)
    except GpuOperatorError as error:
        print(f"config-manager: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
