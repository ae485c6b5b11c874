"""``gpu-operator config-manager`` (executable ``config-manager``): upstream's device-plugin
sidecar. It installs the named config this node's ``nvidia.com/device-plugin.config`` label
selects from the plugin ConfigMap at ``CONFIG_FILE_DST``; as the init container
(``ONESHOT=true``) once, as the sidecar on every label change, sending ``SIGNAL`` to
``PROCESS_TO_SIGNAL`` in the pod (``shareProcessNamespace``) when the file changed.

Upstream's flags and variables (``--oneshot``/``ONESHOT``, ``--config-file-srcdir``/
``CONFIG_FILE_SRCDIR`` …) resolve through ``settings_engine``: flag > variable > default, a bad
value refused in one line naming it before anything is read or installed."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from gpu_operator import logs
from gpu_operator.cli_settings import KUBECONFIG, go_flags, option
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
from gpu_operator.settings_engine import Field, integer, resolve

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


@dataclass(frozen=True)
class ConfigManagerSettings:
    """config-manager's settings, upstream's flags and variables (``FIELDS``); the defaults
    are upstream's but the two directories and the fallbacks, which upstream leaves empty."""

    node_name: str = ""
    node_label: str = DEVICE_PLUGIN_CONFIG_LABEL
    config_file_srcdir: str = "/available-configs"
    config_file_dst: str = "/config/config.yaml"
    default_config: str = ""
    fallback_strategies: str = "named,single"
    oneshot: bool = False
    send_signal: bool = True
    signal: int = 1
    process_to_signal: str = "nvidia-device-plugin"
    kubeconfig: Path | None = None


FIELDS: dict[str, Field[None]] = {
    "oneshot": Field("--oneshot", ("ONESHOT",), bool),
    "kubeconfig": KUBECONFIG,
    "node_name": Field("--node-name", ("NODE_NAME",), str),
    "node_label": Field("--node-label", ("NODE_LABEL",), str, empty_is_unset=True),
    "config_file_srcdir": Field(
        "--config-file-srcdir", ("CONFIG_FILE_SRCDIR",), str, empty_is_unset=True
    ),
    "config_file_dst": Field("--config-file-dst", ("CONFIG_FILE_DST",), str, empty_is_unset=True),
    "default_config": Field("--default-config", ("DEFAULT_CONFIG",), str),
    "fallback_strategies": Field(
        "--fallback-strategies", ("FALLBACK_STRATEGIES",), str, empty_is_unset=True
    ),
    "send_signal": Field("--send-signal", ("SEND_SIGNAL",), bool),
    "signal": Field("--signal", ("SIGNAL",), integer),
    "process_to_signal": Field(
        "--process-to-signal", ("PROCESS_TO_SIGNAL",), str, empty_is_unset=True
    ),
}
"""k8s-device-plugin's ``cmd/config-manager`` flags and variables, resolved by the engine."""
COMMAND_CLASS = go_flags(FIELDS)
"""The command's click class: urfave/cli's boolean flags (``--oneshot``, ``--oneshot=false``)."""


def settings_of(flags: dict[str, Any], env: Mapping[str, str]) -> ConfigManagerSettings:
    """The settings ``flags`` (text or ``None``) and ``env`` give; ``ConfigError`` naming the
    flag or variable of a bad value, or ``NODE_NAME`` when none is set."""
    settings = ConfigManagerSettings(**resolve(FIELDS, flags, env, None).values)
    if not settings.node_name:
        raise ConfigError("NODE_NAME (--node-name) is not set: config-manager must know its node")
    return settings


_D = ConfigManagerSettings()


def config_manager_command(
    oneshot: str | None = option(
        FIELDS["oneshot"], help="Install once and exit (the init container).", default="false"
    ),
    node_name: str | None = option(FIELDS["node_name"], help="This node (required)."),
    node_label: str | None = option(FIELDS["node_label"], default=_D.node_label),
    config_file_srcdir: str | None = option(
        FIELDS["config_file_srcdir"], help="The named configs.", default=_D.config_file_srcdir
    ),
    config_file_dst: str | None = option(
        FIELDS["config_file_dst"], help="Where the plugin reads.", default=_D.config_file_dst
    ),
    default_config: str | None = option(
        FIELDS["default_config"], help="The config when the label is unset."
    ),
    fallback_strategies: str | None = option(
        FIELDS["fallback_strategies"],
        help="named, single, empty (comma list).",
        default=_D.fallback_strategies,
    ),
    send_signal: str | None = option(
        FIELDS["send_signal"], help="Signal the plugin after a change.", default="true"
    ),
    signal: str | None = option(FIELDS["signal"], default=_D.signal),
    process_to_signal: str | None = option(
        FIELDS["process_to_signal"], default=_D.process_to_signal
    ),
    kubeconfig: str | None = option(FIELDS["kubeconfig"]),
    server: str | None = typer.Option(None, "--server", help="API server URL."),
) -> None:
    """Install the device-plugin config this node's label selects (upstream's config-manager)."""
    from gpu_operator.kube import KubeSettings, build_client, get_node, watch_node

    logs.setup(logging.INFO)
    flags = {k: v for k, v in locals().items() if k in FIELDS}
    try:
        settings = settings_of(flags, os.environ)
        node_name, node_label = settings.node_name, settings.node_label
        default, dst = settings.default_config, settings.config_file_dst
        strategies = parse_fallbacks(settings.fallback_strategies)
        source, target = host_path(settings.config_file_srcdir), host_path(dst)
        with contextlib.closing(
            build_client(KubeSettings(server=server, kubeconfig=settings.kubeconfig))
        ) as client:
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

            if settings.oneshot:
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
                if changed and settings.send_signal:
                    _signal(settings.process_to_signal, settings.signal, node_name)
    except GpuOperatorError as error:
        print(f"config-manager: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
