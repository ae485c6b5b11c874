"""YAML read as ``yaml.safe_load``/``safe_load_all`` read it, with libyaml's parser where PyYAML
has it (about 10x faster than the pure-Python one): for the goldens, CRDs and rendered charts
tests read by the hundred kilobytes. Same tags, same types; only error wording differs, so a
test that checks how bad YAML is reported reads it with ``yaml`` itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """One document, as ``yaml.safe_load``."""
    return yaml.load(text, Loader=LOADER)


def load_all(text: str) -> Iterator[Any]:
    """Every document, as ``yaml.safe_load_all``."""
    return yaml.load_all(text, Loader=LOADER)
