"""What a Kubernetes API server does to a custom resource before it validates it: fill the
structural schema's ``default``s (only where the parent object is present). The emulator does
not default yet, so tests that create an upstream CR relying on a default call this first."""

from __future__ import annotations

from typing import Any


def defaulted(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        out = dict(value)
        for name, child in (schema.get("properties") or {}).items():
            if name not in out and "default" in child:
                out[name] = child["default"]
            if name in out:
                out[name] = defaulted(out[name], child)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [defaulted(item, schema["items"]) for item in value]
    return value
