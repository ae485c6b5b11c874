"""``gpu-operator node-labeler``: write the NFD labels the operator reads, on clusters
without NFD (deployed by the chart as a DaemonSet when ``nfd.enabled=true``)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from gpu_operator import logs
from gpu_operator.hostpaths import host_path


def node_labeler_command(
    node_name: str = typer.Option("", "--node-name", envvar="NODE_NAME", help="This node."),
    sys_root: Path = typer.Option(Path("/sys"), "--sys-root", envvar="SYS_ROOT", help="/sys."),
    host_root: Path = typer.Option(
        Path("/host"), "--host-root", envvar="HOST_ROOT", help="The host's / (for os-release)."
    ),
    proc_root: Path = typer.Option(Path("/proc"), "--proc-root", envvar="PROC_ROOT"),
    interval_s: float = typer.Option(
        60.0, "--interval", envvar="NODE_LABELER_INTERVAL_S", help="Seconds between passes."
    ),
    oneshot: bool = typer.Option(False, "--oneshot", help="Label once and exit."),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG"),
) -> None:
    """Label this node: feature.node.kubernetes.io/{pci-10de,system-os_release,kernel-version}."""
    from gpu_operator.kube import KubeSettings, build_client
    from gpu_operator.operator.node_features import FeatureRoots
    from gpu_operator.operator.node_labeler import LabelerSettings, run

    logs.setup(logging.INFO)
    roots = FeatureRoots(
        sys=host_path(sys_root),
        os_release=host_path(host_root / "etc" / "os-release"),
        kernel_release=host_path(proc_root / "sys" / "kernel" / "osrelease"),
    )
    settings = LabelerSettings(node_name, roots=roots, interval_s=interval_s, oneshot=oneshot)
    client = build_client(KubeSettings(kubeconfig=kubeconfig))
    run(client, settings)
