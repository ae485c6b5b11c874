"""Every import contract catches a module added after it was written: in a copy of the package,
one throwaway module per contract breaks it — a new top-level module with no layer, a module in
the lowest package importing the top layer, a module of an unlisted package importing each
protected module, a new module in each forbidden contract's source package, two new modules
importing each other in each package that must stay acyclic — and the real
``lint-imports`` with our ``.importlinter`` reports each contract BROKEN and names the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from importlinter_config import CONFIG, PACKAGE, ROOT, contracts, listed

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PROBE = "zz_probe_new_module"


def packages(root: Path) -> list[str]:
    """Top-level packages of gpu_operator, sorted."""
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())


def write_probe(root: Path, package: str, imported: str) -> str:
    """A new module ``gpu_operator.<package>.zz_probe…_<n>`` importing ``imported``: the
    import as lint-imports reports it."""
    directory = root.joinpath(*package.split(".")[1:])
    assert (directory / "__init__.py").is_file(), f"{package} is not a package"
    name = f"{PROBE}_{len(list(root.rglob(f'{PROBE}_*.py')))}"
    (directory / f"{name}.py").write_text(f'"""Probe."""\n\nimport {imported}\n')
    return f"{package}.{name} -> {imported}"


def covers(module: str, expressions: list[str]) -> bool:
    return any(module == e or module.startswith(e + ".") for e in expressions)


@pytest.fixture(scope="module")
def lint_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, list[str]]]:
    """``lint-imports`` over a copy of the package with one probe per contract; the output with
    whitespace collapsed, and per contract the import it must report."""
    work = tmp_path_factory.mktemp("probes")
    root = work / "gpu_operator"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__", "chart"))
    expected: dict[str, list[str]] = {}
    for name, contract in contracts().items():
        kind = contract["type"]
        reported = expected.setdefault(name, [])
        if kind == "layers":
            layers = [[m.strip() for m in layer.split("|")] for layer in listed(contract, "layers")]
            (root / f"{PROBE}_top.py").write_text('"""A module no layer names."""\n')
            reported.append(f"gpu_operator.{PROBE}_top")
            lowest = next(
                (m for layer in reversed(layers) for m in layer if m in packages(root)), None
            )
            if listed(contract, "containers") != ["gpu_operator"] or lowest is None:
                pytest.fail(f"contract {name}: layers of gpu_operator's packages, as containers")
            reported.append(
                write_probe(root, f"gpu_operator.{lowest}", f"gpu_operator.{layers[0][0]}")
            )
        elif kind == "protected":
            allowed = listed(contract, "allowed_importers")
            for protected in listed(contract, "protected_modules"):
                outsider = next(
                    f"gpu_operator.{p}"
                    for p in packages(root)
                    if not covers(f"gpu_operator.{p}", allowed)
                    and not any(a.startswith(f"gpu_operator.{p}.") for a in allowed)
                    and not covers(f"gpu_operator.{p}", [protected])
                )
                reported.append(write_probe(root, outsider, protected))
        elif kind == "acyclic_siblings":
            for ancestor in listed(contract, "ancestors"):
                first = f"{ancestor}.{PROBE}_cycle_a"
                second = f"{ancestor}.{PROBE}_cycle_b"
                directory = root.joinpath(*ancestor.split(".")[1:])
                (directory / f"{PROBE}_cycle_a.py").write_text(f"import {second}\n")
                (directory / f"{PROBE}_cycle_b.py").write_text(f"import {first}\n")
                reported.append(f"No cycles are allowed in {ancestor}.")
                reported.append(f"{PROBE}_cycle_")
        elif kind == "forbidden":
            forbidden = listed(contract, "forbidden_modules")[0]
            for source in listed(contract, "source_modules"):
                if not (root.joinpath(*source.split(".")[1:]) / "__init__.py").is_file():
                    pytest.fail(f"contract {name}: source {source} is a module, not a package")
                reported.append(write_probe(root, source, forbidden))
        else:
            pytest.fail(f"contract {name}: type {kind} has no probe")
    done = subprocess.run(
        [str(LINT_IMPORTS), str(CONFIG), "--no-cache"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(work)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return " ".join(done.stdout.split()), expected


@pytest.mark.parametrize("name", sorted(contracts()))
def test_a_new_module_breaking_the_contract_is_caught(
    name: str, lint_output: tuple[str, dict[str, list[str]]]
) -> None:
    output, expected = lint_output
    title = " ".join(contracts()[name]["name"].split())
    assert f"{title} BROKEN" in output, f"{name} kept despite its probe:\n{output[-3000:]}"
    assert expected[name]
    for probe in expected[name]:
        assert probe in output, f"{name}: {probe} not reported"


def test_the_package_as_it_is_keeps_every_contract() -> None:
    done = subprocess.run(
        [str(LINT_IMPORTS), str(CONFIG), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
