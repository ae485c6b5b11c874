"""Processes of the machine as /proc shows them, for tests that check nothing outlived what
started it (read only: nothing is signalled)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def processes_naming(text: str) -> list[int]:
    """Live PIDs whose command line or environment contains ``text`` (zombies have neither)."""
    needle, found = text.encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (
                needle in (entry / "cmdline").read_bytes()
                or needle in (entry / "environ").read_bytes()
            ):
                found.append(int(entry.name))
    return found
