"""The Helm chart ships as package data: a wheel built from a copy of the checkout holds every
file of ``deployments/gpu-operator`` under ``gpu_operator/chart`` (in the checkout a link), and
installed outside the checkout, run from another directory, ``chart_dir()`` finds it there and
the real ``helm`` renders it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")

# What the installed package says about its chart, run with only the wheel's files importable.
PROBE = """
import json, sys
from gpu_operator.sandbox import chart
found = chart.chart_dir()
rendered = chart.render(["driver.enabled=false"]) if sys.argv[1] == "render" else []
print(json.dumps({"chart": str(found), "kinds": sorted({o["kind"] for o in rendered})}))
"""


def files(directory: Path) -> dict[str, bytes]:
    """Every file but dotfiles (package data leaves ``.helmignore`` out; helm needs it only to
    skip editor backups)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (so the build leaves the checkout alone) and
    unpacked with pip into a directory of its own; that directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=skip)
    shutil.copytree(CHART, source / "deployments" / "gpu-operator")
    assert (source / "src" / "gpu_operator" / "chart").is_symlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True, timeout=120)
    (wheel,) = (work / "dist").glob("gpu_operator-*.whl")
    site = work / "site"
    install = [*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=120)
    return site


def run_installed(site: Path, cwd: Path, mode: str) -> tuple[str, list[str]]:
    """The chart directory the installed package finds and, with ``render``, the kinds helm
    renders from it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HELM")}
    if HELM:
        env["HELM"] = HELM
    # -I: no PYTHONPATH, user site or cwd; the wheel's directory goes first on the path, ahead of
    # the checkout's editable install.
    argv = [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n{PROBE}"]
    done = subprocess.run(
        [*argv, mode], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return str(result["chart"]), [str(kind) for kind in result["kinds"]]


def test_the_wheel_holds_the_whole_chart(installed: Path) -> None:
    packaged = installed / "gpu_operator" / "chart"
    assert not packaged.is_symlink()
    assert files(packaged) == files(CHART)


def test_the_installed_package_finds_its_chart_from_any_directory(
    installed: Path, tmp_path: Path
) -> None:
    chart, _ = run_installed(installed, tmp_path, "find")
    assert chart == str(installed / "gpu_operator" / "chart")


@pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)")
def test_helm_renders_the_installed_chart(installed: Path, tmp_path: Path) -> None:
    chart, kinds = run_installed(installed, tmp_path, "render")
    assert chart == str(installed / "gpu_operator" / "chart")
    assert {"ClusterPolicy", "CustomResourceDefinition", "Deployment"} <= set(kinds)
