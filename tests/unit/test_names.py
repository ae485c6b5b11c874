"""Upstream's names have one home, ``gpu_operator.names``: a string literal in ``src/`` that spells
one of them (or starts with one of its prefixes) anywhere else fails here, naming file:line and
the constant to import. Docstrings and comments may name them (they are read, not compared);
f-strings are checked part by part, so ``f"nvidia.com/gpu.deploy.{x}"`` is caught too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gpu_operator import names

SRC = Path(names.__file__).parent
NAMES_MODULE = Path(names.__file__)
NOT_CHECKED = {"NVIDIA_PREFIX"}
"""``nvidia.com/`` alone is also the API group's domain (``nvidia.com/v1``): too broad to ban."""
PREFIX_ENDINGS = ("/", ".", "-")


def known_names() -> dict[str, str]:
    """Value → constant name, for every upstream name in the names module."""
    known: dict[str, str] = {}
    for key, value in vars(names).items():
        if key.isupper() and isinstance(value, str) and key not in NOT_CHECKED:
            known.setdefault(value, key)
    return known


def pattern(value: str) -> re.Pattern[str]:
    """A name at a word boundary: not inside a longer path or label (``nvidia.com/gpu`` is not
    found in ``nvidia.com/gpu.product``); a prefix matches whatever follows it."""
    after = "" if value.endswith(PREFIX_ENDINGS) else r"(?![\w.-])"
    return re.compile(r"(?<![\w./-])" + re.escape(value) + after)


def string_constants(tree: ast.AST) -> list[ast.Constant]:
    """Every string constant in ``tree`` but those that stand alone as statements (docstrings),
    in one pass over the tree (``ast.walk`` twice was most of this test's time)."""
    constants: list[ast.Constant] = []
    docstrings: set[int] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                constants.append(node)
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docstrings.add(id(node.value))
        for field in node._fields:
            child = getattr(node, field, None)
            if isinstance(child, ast.AST):
                stack.append(child)
            elif isinstance(child, list):
                stack.extend(item for item in child if isinstance(item, ast.AST))
    return sorted(
        (c for c in constants if id(c) not in docstrings), key=lambda c: (c.lineno, c.col_offset)
    )


def stray_literals(root: Path) -> list[str]:
    """``path:line: 'literal' spells NAME`` for every stray upstream name under ``root``."""
    known = known_names()
    patterns = {value: pattern(value) for value in sorted(known, key=len, reverse=True)}
    # Every pattern needs its name as a substring: a literal holding none is done at once.
    any_name = re.compile("|".join(re.escape(value) for value in patterns))
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == NAMES_MODULE:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in string_constants(tree):
            text = node.value
            assert isinstance(text, str)
            if not any_name.search(text):
                continue
            value = next((v for v, regex in patterns.items() if regex.search(text)), None)
            if value is not None:
                where = f"{path.relative_to(root.parent)}:{node.lineno}"
                found.append(f"{where}: {node.value!r} spells names.{known[value]}")
    return found


def test_no_upstream_name_is_spelled_outside_the_names_module() -> None:
    stray = stray_literals(SRC)
    assert not stray, "import these from gpu_operator.names:\n" + "\n".join(stray)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        pytest.param('LABEL = "nvidia.com/mig.config"\n', True, id="a label"),
        pytest.param('x = f"nvidia.com/gpu.deploy.{state}"\n', True, id="a prefix in an f-string"),
        pytest.param(
            'x = "rm -f /run/nvidia/validations/*-ready"\n', True, id="a path in a command"
        ),
        pytest.param('x = "no GPU nodes (nvidia.com/gpu.present=true)"\n', True, id="in a message"),
        pytest.param('x = "nvidia.com/gpu.product.extra"\n', False, id="a longer name"),
        pytest.param('x = "nvidia.com/v1"\n', False, id="the API group"),
        pytest.param('"""Reads nvidia.com/mig.config."""\n', False, id="a docstring"),
        pytest.param("# nvidia.com/mig.config\nx = 1\n", False, id="a comment"),
    ],
)
def test_the_scan_tells_a_stray_name_from_prose(tmp_path: Path, source: str, caught: bool) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "module.py").write_text(source)

    assert bool(stray_literals(package)) is caught


def test_the_names_are_upstreams_and_spelled_once() -> None:
    values = [v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)]
    assert len(set(values)) == len(values) - 1, "only CDI_KIND repeats GPU_RESOURCE on purpose"
    assert names.MIG_CONFIG_LABEL == "nvidia.com/mig.config"
    assert names.VALIDATIONS_DIR == "/run/nvidia/validations"
    assert names.KUBELET_SOCKET == "/var/lib/kubelet/device-plugins/kubelet.sock"


def test_dra_device_names_read_back_as_upstream_spells_them() -> None:
    from gpu_operator.names import dra_gpu_device, dra_mig_device, parse_dra_mig_device

    assert dra_gpu_device(3) == "gpu-3"
    assert dra_mig_device(0, "3g40gb", 9, 4) == "gpu-0-mig-3g40gb-9-4"
    assert parse_dra_mig_device("gpu-0-mig-3g40gb-9-4") == (0, 9, 4)
    assert parse_dra_mig_device("gpu-12-mig-1g10gb-me-20-6") == (12, 20, 6)
    for other in ("gpu-0", "gpu-0-mig--9-4", "gpu-x-mig-3g40gb-9-4", "gpu-0-mig-3g40gb-9", "x"):
        assert parse_dra_mig_device(other) is None, other
