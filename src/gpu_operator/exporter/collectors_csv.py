"""The dcgm-exporter counters file (``-f/--collectors``): ``DCGM field, prometheus type, help``.

Parsed as upstream parses it (CSV, ``#`` comments, exactly three trimmed fields per record,
types ``gauge``/``counter``/``histogram``/``summary``/``label``). A DCGM field this exporter
does not measure is skipped and reported; a name DCGM does not have is an error naming the file
and line, as is a bad type or a short record.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from gpu_operator.errors import ConfigError
from gpu_operator.exporter.fields import FIELDS, KNOWN_UNSUPPORTED, SYNTHESISED

PROM_TYPES = ("gauge", "counter", "histogram", "summary", "label")
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_COLLECTORS = DATA_DIR / "default-counters.csv"


@dataclass(frozen=True)
class Row:
    field: str
    prom_type: str
    help: str
    line: int


@dataclass(frozen=True)
class Collectors:
    metrics: tuple[Row, ...]
    labels: tuple[Row, ...]
    skipped: tuple[str, ...] = field(default=())
    """One message per row that was read but is not served (unsupported field)."""

    @property
    def names(self) -> set[str]:
        return {r.field for r in self.metrics}


def load_collectors(text: str, *, source: str) -> Collectors:
    metrics: list[Row] = []
    labels: list[Row] = []
    skipped: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            record = next(csv.reader(io.StringIO(raw), skipinitialspace=True))
        except (csv.Error, StopIteration) as error:
            raise ConfigError(f"{source}:{number}: not a CSV record: {error}") from error
        parts = [p.strip() for p in record]
        if len(parts) != 3:
            raise ConfigError(
                f"{source}:{number}: expected 3 fields (DCGM field, type, help), got {len(parts)}"
            )
        name, prom_type, help_text = parts
        if prom_type not in PROM_TYPES:
            raise ConfigError(
                f"{source}:{number}: unknown type {prom_type!r} for {name} "
                f"(one of {', '.join(PROM_TYPES)})"
            )
        if name in seen:
            raise ConfigError(
                f"{source}:{number}: {name} is listed twice (first at line {seen[name]})"
            )
        seen[name] = number
        if name in KNOWN_UNSUPPORTED:
            skipped.append(f"{source}:{number}: skipping {name}: not measured by this exporter")
            continue
        if name not in FIELDS and name not in SYNTHESISED:
            raise ConfigError(f"{source}:{number}: unknown DCGM field {name!r}")
        row = Row(name, prom_type, help_text, number)
        (labels if prom_type == "label" else metrics).append(row)
    return Collectors(tuple(metrics), tuple(labels), tuple(skipped))


def read_collectors(path: Path) -> Collectors:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"collectors file {path}: {error.strerror or error}") from error
    return load_collectors(text, source=str(path))
