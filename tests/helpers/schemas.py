"""``validate(instance, schema)``: ``jsonschema.validate`` with the schema itself checked once per
session (the metaschema check of a CRD's schema takes longer than any validation against it;
``jsonschema.validate`` repeats it on every call). Same errors: a bad schema raises
``SchemaError`` the first time, an invalid instance the ``best_match`` ``ValidationError``."""

from __future__ import annotations

import json
from typing import Any

from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]
from jsonschema.validators import validator_for  # type: ignore[import-untyped,unused-ignore]

_CHECKED: set[str] = set()


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """As ``jsonschema.validate(instance, schema)``."""
    cls = validator_for(schema)
    key = json.dumps(schema, sort_keys=True)
    if key not in _CHECKED:
        cls.check_schema(schema)
        _CHECKED.add(key)
    error = best_match(cls(schema).iter_errors(instance))
    if error is not None:
        raise error
