"""The other typer agents take their settings through the one engine too: node-labeler's flags
and variables, ``toolkit cdi-generate``'s output file, and the ``--kubeconfig`` flag (over
``KUBECONFIG``) of mig-manager and driver-manager. A variable is read, a flag beats it, a bad
value is one line naming it, exit 1, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.sandbox.apiserver import ServerThread
from helpers.in_process import run_main

PCI_LABEL = "feature.node.kubernetes.io/pci-10de.present"


def _host(root: Path) -> Path:
    """A host with one NVIDIA GPU at ``root`` (sys, host, proc), as the labeler reads it."""
    device = root / "sys" / "bus" / "pci" / "devices" / "0000:07:00.0"
    device.mkdir(parents=True)
    (device / "vendor").write_text("0x10de\n")
    (device / "class").write_text("0x030200\n")
    (root / "host" / "etc").mkdir(parents=True)
    (root / "host" / "etc" / "os-release").write_text('ID="rocky"\nVERSION_ID="8.5"\n')
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "proc" / "sys" / "kernel" / "osrelease").write_text("4.18.0-348.el8.x86_64\n")
    return root


def test_the_node_labeler_s_flags_beat_its_variables(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    server_thread: ServerThread,
    client: Client,
) -> None:
    client.create(Node(metadata=ObjectMeta(name="n1")))
    gpu_host, plain_host = _host(tmp_path / "gpu"), tmp_path / "plain"
    kubeconfig = server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("NODE_NAME", "n1")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("SYS_ROOT", str(plain_host / "sys"))  # no GPU there: the flag wins
    for name in ("host", "proc"):
        monkeypatch.setenv(f"{name.upper()}_ROOT", str(gpu_host / name))
    ran = run_main(capsys, "node-labeler", "--oneshot", "--sys-root", str(gpu_host / "sys"))
    assert ran.code == 0, ran.stderr
    labels = client.get(Node, "n1").metadata.labels or {}
    assert labels[PCI_LABEL] == "true"
    assert labels["feature.node.kubernetes.io/system-os_release.ID"] == "rocky"


def test_a_bad_node_labeler_interval_is_refused_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODE_LABELER_INTERVAL_S", "1m")
    ran = run_main(capsys, "node-labeler", "--node-name", "n1")
    assert (ran.code, ran.stderr) == (
        1,
        "gpu-operator: NODE_LABELER_INTERVAL_S='1m': not a number\n",
    )
    monkeypatch.delenv("NODE_LABELER_INTERVAL_S")
    ran = run_main(capsys, "node-labeler", "--oneshot=maybe")
    assert ran.code == 1
    assert ran.stderr.startswith("gpu-operator: --oneshot='maybe': not a boolean; use one of 1,")


def test_cdi_generate_writes_where_the_flag_says_over_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NVIDIA_CTK_CDI_OUTPUT_FILE_PATH", str(tmp_path / "env.yaml"))
    ran = run_main(capsys, "--sim", "t4", "toolkit", "cdi-generate")
    assert ran.code == 0, ran.stderr
    ran = run_main(
        capsys, "--sim", "t4", "toolkit", "cdi-generate", "--output", str(tmp_path / "flag.yaml")
    )
    assert ran.code == 0, ran.stderr
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["env.yaml", "flag.yaml"]
    assert "nvidia.com/gpu" in (tmp_path / "flag.yaml").read_text()


@pytest.mark.parametrize("agent", ["mig-manager", "driver-manager"])
def test_the_kubeconfig_flag_beats_the_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    agent: str,
) -> None:
    monkeypatch.setenv("NODE_NAME", "n1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "from-variable"))
    ran = run_main(capsys, agent, "--kubeconfig", str(tmp_path / "from-flag"))
    assert ran.code == 1
    assert f"kubeconfig {tmp_path / 'from-flag'}: no such file" in ran.stderr
    ran = run_main(capsys, agent)
    assert f"kubeconfig {tmp_path / 'from-variable'}: no such file" in ran.stderr


def test_wait_for_refuses_a_timeout_that_is_not_a_number_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ran = run_main(capsys, "wait-for", str(tmp_path / "never"), "--timeout", "5m")
    assert (ran.code, ran.stderr) == (1, "gpu-operator: --timeout='5m': not a number\n")
    ran = run_main(capsys, "wait-for", str(tmp_path), "--timeout=0.5")
    assert (ran.code, ran.stderr) == (0, "")
