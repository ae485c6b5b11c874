"""The import contracts cover a module the day it is added: ``.importlinter`` names packages and
layers, never a hand-picked list of modules. A layers contract is exhaustive over its container
(a new top-level module must be given a layer), a forbidden contract's sources are whole
packages, a protected module refuses every importer but the ones named, and no package of the
whole tree may hold an import cycle. (The contract tier runs
``lint-imports`` on throwaway violating modules: tests/contract/test_import_contract_probes.py.)"""

from __future__ import annotations

import pytest

from importlinter_config import PACKAGE, contracts, listed


def is_package(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "gpu_operator" and (PACKAGE.joinpath(*parts[1:]) / "__init__.py").is_file()


def top_level_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return names | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_every_contract_is_by_layer_or_package() -> None:
    kinds = {name: c["type"] for name, c in contracts().items()}
    assert kinds
    assert set(kinds.values()) <= {"layers", "protected", "forbidden", "acyclic_siblings"}, kinds


@pytest.mark.parametrize(
    "name", [n for n, c in contracts().items() if c["type"] == "layers"] or ["(none)"]
)
def test_a_layers_contract_is_exhaustive_and_places_every_top_level_module(name: str) -> None:
    contract = contracts()[name]
    assert listed(contract, "containers") == ["gpu_operator"], "layers of gpu_operator's children"
    assert contract.getboolean("exhaustive"), f"{name}: a new top-level module must be placed"
    placed = {m.strip() for layer in listed(contract, "layers") for m in layer.split("|")}
    assert top_level_modules() - placed == set(), f"{name}: give these a layer"


@pytest.mark.parametrize(
    "name", [n for n, c in contracts().items() if c["type"] == "forbidden"] or ["(none)"]
)
def test_a_forbidden_contract_constrains_whole_packages(name: str) -> None:
    sources = listed(contracts()[name], "source_modules")
    by_hand = [m for m in sources if not (is_package(m) or "*" in m)]
    assert sources
    assert not by_hand, (
        f"{name}: {by_hand} are modules, so a new module beside them is unchecked: name the "
        "package and exempt the I/O shells with ignore_imports"
    )


def test_no_package_may_hold_an_import_cycle() -> None:
    acyclic = [c for c in contracts().values() if c["type"] == "acyclic_siblings"]
    assert [listed(c, "ancestors") for c in acyclic] == [["gpu_operator"]]
    assert acyclic[0].getint("depth", 10) >= 10, "every depth of the tree"


def test_the_rules_of_the_design_are_all_there() -> None:
    """DESIGN §3/§9: who may import pynvml, grpc, lightkube and the sandbox."""
    protected = {
        m: set(listed(c, "allowed_importers"))
        for c in contracts().values()
        if c["type"] == "protected"
        for m in listed(c, "protected_modules")
    }
    assert protected["pynvml"] == {"gpu_operator.gpu"}
    assert "gpu_operator.protos" in protected["grpc"]
    # The device plugin and the PodResources client speak gRPC through grpc_h2: no grpcio.
    assert not {"gpu_operator.deviceplugin", "gpu_operator.podresources"} & protected["grpc"]
    assert {"gpu_operator.kube"} <= protected["lightkube"]
    assert all(
        m.startswith(("gpu_operator.kube", "gpu_operator.operator")) for m in protected["lightkube"]
    )
    assert protected["gpu_operator.sandbox"] == {
        "gpu_operator.cli",
        "gpu_operator.commands.sandbox",
    }
