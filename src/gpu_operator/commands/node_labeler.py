"""``gpu-operator node-labeler``: write the NFD labels the operator reads, on clusters
without NFD (deployed by the chart as a DaemonSet when ``nfd.enabled=true``).

Its flags and variables (ours: NFD has no such agent) resolve through ``settings_engine``
like every agent's: flag > variable > default, ``--oneshot`` as urfave/cli reads a boolean."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from gpu_operator import logs
from gpu_operator.cli_settings import KUBECONFIG, given, go_flags, option
from gpu_operator.hostpaths import host_path
from gpu_operator.settings_engine import Field, number, resolve

FIELDS: dict[str, Field[None]] = {
    "node_name": Field("--node-name", ("NODE_NAME",), str),
    "sys_root": Field("--sys-root", ("SYS_ROOT",), Path, empty_is_unset=True),
    "host_root": Field("--host-root", ("HOST_ROOT",), Path, empty_is_unset=True),
    "proc_root": Field("--proc-root", ("PROC_ROOT",), Path, empty_is_unset=True),
    "interval_s": Field("--interval", ("NODE_LABELER_INTERVAL_S",), number),
    "oneshot": Field("--oneshot", (), bool),
    "kubeconfig": KUBECONFIG,
}
"""The labeler's flags and variables, resolved by ``settings_engine``."""
COMMAND_CLASS = go_flags(FIELDS)
"""The command's click class: ``--oneshot`` bare or ``--oneshot=false``."""


def node_labeler_command(
    node_name: str | None = option(FIELDS["node_name"], help="This node."),
    sys_root: str | None = option(FIELDS["sys_root"], help="/sys.", default="/sys"),
    host_root: str | None = option(
        FIELDS["host_root"], help="The host's / (for os-release).", default="/host"
    ),
    proc_root: str | None = option(FIELDS["proc_root"], default="/proc"),
    interval_s: str | None = option(
        FIELDS["interval_s"], help="Seconds between passes.", default=60
    ),
    oneshot: str | None = option(FIELDS["oneshot"], help="Label once and exit.", default="false"),
    kubeconfig: str | None = option(FIELDS["kubeconfig"]),
) -> None:
    """Label this node: feature.node.kubernetes.io/{pci-10de,system-os_release,kernel-version}."""
    from gpu_operator.kube import KubeSettings, build_client
    from gpu_operator.operator.node_features import FeatureRoots
    from gpu_operator.operator.node_labeler import LabelerSettings, run

    values = resolve(FIELDS, given(FIELDS, locals()), os.environ, None).values
    logs.setup(logging.INFO)
    sys_dir: Path = values.get("sys_root", Path("/sys"))
    host_dir: Path = values.get("host_root", Path("/host"))
    proc_dir: Path = values.get("proc_root", Path("/proc"))
    roots = FeatureRoots(
        sys=host_path(sys_dir),
        os_release=host_path(host_dir / "etc" / "os-release"),
        kernel_release=host_path(proc_dir / "sys" / "kernel" / "osrelease"),
    )
    settings = LabelerSettings(
        values.get("node_name", ""),
        roots=roots,
        interval_s=values.get("interval_s", 60.0),
        oneshot=values.get("oneshot", False),
    )
    with contextlib.closing(
        build_client(KubeSettings(kubeconfig=values.get("kubeconfig")))
    ) as client:
        run(client, settings)
