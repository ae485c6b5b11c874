"""The CDI spec's JSON schema (``tests/data/cdi-schema.json``, written from the CDI spec) and
``validate(spec)`` against it, for every test that checks a CDI spec we write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import schemas

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "cdi-schema.json").read_text()
)


def validate(spec: dict[str, Any]) -> None:
    """``jsonschema.ValidationError`` where ``spec`` is not a valid CDI spec."""
    schemas.validate(spec, SCHEMA)
