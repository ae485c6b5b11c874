"""``gpu-operator crds`` as a process: it writes both CRDs (ClusterPolicy, NVIDIADriver) from
the models, ``--check`` fails in one line naming the stale file and writes nothing, and
``--apply`` (the chart's upgrade hook) server-side applies both to an API server (the
emulator), which then serves NVIDIADriver objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import Client
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from gpu_operator.operator import crd, nvidiadriver_crd
from gpu_operator.operator.controller import NVIDIADriver
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.cli import gpu_operator

pytestmark = pytest.mark.timeout(60)
FILES = {crd.CRD_FILE: crd.crd_yaml, nvidiadriver_crd.CRD_FILE: nvidiadriver_crd.crd_yaml}


def test_it_writes_both_crds_and_check_names_a_stale_one(tmp_path: Path) -> None:
    wrote = gpu_operator("crds", "-o", str(tmp_path), env={})
    assert wrote.returncode == 0, wrote.stderr
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        name: make() for name, make in FILES.items()
    }
    assert gpu_operator("crds", "--check", "-o", str(tmp_path), env={}).returncode == 0
    stale = tmp_path / nvidiadriver_crd.CRD_FILE
    stale.write_text("old\n")
    checked = gpu_operator("crds", "--check", "-o", str(tmp_path), env={})
    assert checked.returncode != 0
    assert f"{stale} out of date: run `gpu-operator crds`" in checked.stderr
    assert len(checked.stderr.strip().splitlines()) == 1
    assert stale.read_text() == "old\n", "--check writes nothing"


def test_apply_installs_both_crds(
    server_thread: ServerThread, client: Client, tmp_path: Path
) -> None:
    server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    applied = gpu_operator("crds", "--apply", env={"KUBECONFIG": str(tmp_path / "kubeconfig")})
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "applied customresourcedefinition clusterpolicies.nvidia.com",
        "applied customresourcedefinition nvidiadrivers.nvidia.com",
    ]
    names = {str(c.metadata.name) for c in client.list(CustomResourceDefinition) if c.metadata}
    assert {"clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com"} <= names
    assert list(client.list(NVIDIADriver)) == []
