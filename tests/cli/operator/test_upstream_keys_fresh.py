"""``scripts/gen_upstream_keys.py --check`` as a developer runs it: every file it generates is
what it makes of its inputs now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]


def test_the_generated_files_are_fresh() -> None:
    """The table, the chart's values schema entries and NOTES list, and the "accepted but not
    acted on" section of docs/comparison.md are what the generator makes of its inputs now."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_upstream_keys.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
