"""The project's ``.importlinter`` as data, for the tests that check its contracts."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
PACKAGE = ROOT / "src" / "gpu_operator"


def contracts() -> dict[str, configparser.SectionProxy]:
    """Each contract's section, by its id (``[importlinter:contract:<id>]``)."""
    config = configparser.ConfigParser()
    config.read(CONFIG)
    prefix = "importlinter:contract:"
    return {s.removeprefix(prefix): config[s] for s in config.sections() if s.startswith(prefix)}


def listed(contract: configparser.SectionProxy, key: str) -> list[str]:
    """A multi-line option as its lines (``source_modules``, ``layers``…); [] when absent."""
    return [line.strip() for line in contract.get(key, "").splitlines() if line.strip()]
