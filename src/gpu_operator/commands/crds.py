"""``gpu-operator crds``: write (or check) the ClusterPolicy CRD generated from the model."""

from __future__ import annotations

from pathlib import Path

import typer

from gpu_operator.errors import ConfigError
from gpu_operator.operator.crd import CRD_FILE, crd_yaml

CHART_CRDS = Path("deployments/gpu-operator/crds")


def crds_command(
    output_dir: Path = typer.Option(CHART_CRDS, "-o", "--output-dir", help="Where to write."),
    check: bool = typer.Option(False, "--check", help="Fail if the file differs; write nothing."),
    stdout: bool = typer.Option(False, "--stdout", help="Print the CRD instead of writing it."),
    apply: bool = typer.Option(
        False, "--apply", help="Server-side apply it to the cluster (the chart's upgrade hook)."
    ),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG"),
) -> None:
    """Generate the ClusterPolicy CRD (nvidia.com_clusterpolicies.yaml) from the model."""
    if apply:
        from gpu_operator.kube import KubeSettings, build_client
        from gpu_operator.operator.crd_install import apply_crd

        version = apply_crd(build_client(KubeSettings(kubeconfig=kubeconfig)))
        typer.echo(f"applied customresourcedefinition clusterpolicies.nvidia.com ({version})")
        return
    text = crd_yaml()
    if stdout:
        typer.echo(text, nl=False)
        return
    target = output_dir / CRD_FILE
    if check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            raise ConfigError(f"{target} is out of date: run `gpu-operator crds`")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    typer.echo(f"wrote {target}")
