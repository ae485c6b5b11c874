"""``gpu-operator crds``: write (or check) the CRDs generated from the models: ClusterPolicy
(``nvidia.com/v1``) and NVIDIADriver (``nvidia.com/v1alpha1``)."""

from __future__ import annotations

from pathlib import Path

import typer

from gpu_operator.cli_settings import KUBECONFIG, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.errors import ConfigError
from gpu_operator.operator import crd, nvidiadriver_crd

CHART_CRDS = Path("deployments/gpu-operator/crds")


def crds_command(
    output_dir: Path = typer.Option(CHART_CRDS, "-o", "--output-dir", help="Where to write."),
    check: bool = typer.Option(False, "--check", help="Fail if the file differs; write nothing."),
    stdout: bool = typer.Option(False, "--stdout", help="Print the CRD instead of writing it."),
    apply: bool = typer.Option(
        False, "--apply", help="Server-side apply it to the cluster (the chart's upgrade hook)."
    ),
    kubeconfig: str | None = option(KUBECONFIG),
) -> None:
    """Generate the CRDs (nvidia.com_clusterpolicies.yaml, nvidia.com_nvidiadrivers.yaml) from
    the models."""
    if apply:
        from gpu_operator.kube import KubeSettings, build_client
        from gpu_operator.operator.crd_install import apply_crds

        client = build_client(KubeSettings(kubeconfig=kubeconfig_path(kubeconfig)))
        for name, version in apply_crds(client):
            typer.echo(f"applied customresourcedefinition {name} ({version})")
        return
    files = [
        (crd.CRD_FILE, crd.crd_yaml()),
        (nvidiadriver_crd.CRD_FILE, nvidiadriver_crd.crd_yaml()),
    ]
    if stdout:
        typer.echo("---\n".join(text for _, text in files), nl=False)
        return
    stale = [
        output_dir / name
        for name, text in files
        if not (output_dir / name).exists() or (output_dir / name).read_text() != text
    ]
    if check:
        if stale:
            listed = ", ".join(str(p) for p in stale)
            raise ConfigError(f"{listed} out of date: run `gpu-operator crds`")
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files:
        (output_dir / name).write_text(text)
        typer.echo(f"wrote {output_dir / name}")
