"""YAML text → plain data plus the line of every key path, so that a validation error can say
``file:line: key.path: problem`` (the house style for every config file we read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from gpu_operator.errors import ConfigError

Path = tuple[str | int, ...]


def _lines(node: yaml.Node, path: Path, out: dict[Path, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


# libyaml's loader when PyYAML has it (about 10x faster); the pure-Python one otherwise.
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose_and_construct(text: str, loader_class: type[yaml.SafeLoader]) -> tuple[Any, Any]:
    """One parse: the node tree (for the lines) and the data built from it."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse YAML (or JSON); ``ConfigError`` with the line on a syntax error."""
    try:
        try:
            data, node = _compose_and_construct(text, _FAST_LOADER)
        except yaml.YAMLError:
            # Bad YAML is rare: the pure-Python parser words the error (and its line) as always.
            data, node = _compose_and_construct(text, yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{source}{line}: not valid YAML: {problem}") from error
    lines: dict[Path, int] = {}
    if node is not None:
        _lines(node, (), lines)
    return data, lines


def format_path(path: Sequence[str | int]) -> str:
    """``mig-configs.all-balanced[0].mig-devices["1g.5gb"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part or " " in part:
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def line_of(path: Sequence[str | int], lines: dict[Path, int]) -> int:
    key = tuple(path)
    while key not in lines and key:
        key = key[:-1]
    return lines.get(key, 1)


def _problem(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "greater_than_equal":
        return f"must be ≥ {error['ctx']['ge']}, got {error.get('input')!r}"
    if kind in ("int_type", "int_parsing"):
        return f"must be a whole number, got {error.get('input')!r}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"{message.replace('Input should be', 'must be')}, got {error.get('input')!r}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def config_error(error: ValidationError, source: str, lines: dict[Path, int]) -> ConfigError:
    """One ``file:line: key.path: problem`` line per pydantic error, in document order."""
    found = []
    for item in error.errors():
        # pydantic appends the union member's name to the location; it is not a key.
        path = [
            p
            for p in item["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
        ]
        found.append((line_of(path, lines), f"{format_path(path)}: {_problem(item)}"))
    found.sort(key=lambda pair: pair[0])
    return ConfigError("\n".join(f"{source}:{line}: {text}" for line, text in found))
