"""`operator.logging.develMode` (NVIDIA's values) reaches the operator as upstream's chart passes
it, `--zap-devel` instead of the level and time-encoding flags, and the operator takes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gpu_operator.sandbox.chart import find_helm

CHART = Path(__file__).resolve().parents[3] / "deployments" / "gpu-operator"


def operator_args(*sets: str) -> list[str]:
    argv = [str(find_helm()), "template", "x", str(CHART)]
    for value in sets:
        argv += ["--set", value]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(done.stdout) if d]
    [deployment] = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gpu-operator"
    ]
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def test_devel_mode_renders_zap_devel_in_place_of_level_and_time_encoding() -> None:
    assert operator_args("operator.logging.develMode=true") == ["--leader-elect", "--zap-devel"]
    assert operator_args() == [
        "--leader-elect",
        "--zap-time-encoding=epoch",
        "--zap-log-level=info",
    ]


def test_the_operator_accepts_zap_devel() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", "operator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--zap-devel" in done.stdout
