"""CustomResourceDefinitions: check a CRD, turn its served versions into resource types, and
fill the status a real API server reports once the CRD is established."""

from __future__ import annotations

from typing import Any

from gpu_operator.sandbox.apiserver.defaulting import check_defaults, has_defaults
from gpu_operator.sandbox.apiserver.resources import PrinterColumn, ResourceType
from gpu_operator.sandbox.apiserver.validation import Cause


def check_crd(crd: dict[str, Any]) -> list[Cause]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    causes: list[Cause] = []
    group = spec.get("group")
    names = spec.get("names") or {}
    if not isinstance(group, str) or not group:
        causes.append(("spec.group", "Required value"))
    for field in ("plural", "kind"):
        if not isinstance(names.get(field), str) or not names.get(field):
            causes.append((f"spec.names.{field}", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: '
                '"Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(
            (
                "spec.versions",
                "Required value: must have exactly one version marked as storage version",
            )
        )
        return causes
    if sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(
            (
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    for n, version in enumerate(versions):
        if not isinstance(version, dict) or not version.get("name"):
            causes.append((f"spec.versions[{n}].name", "Required value"))
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is not None and not isinstance(schema, dict):
            causes.append(
                (f"spec.versions[{n}].schema.openAPIV3Schema", "Invalid value: must be an object")
            )
        elif schema is not None:
            causes += check_defaults(schema, f"spec.versions[{n}].schema.openAPIV3Schema")
    name = crd.get("metadata", {}).get("name")
    if not causes and name != f"{names['plural']}.{group}":
        causes.append(
            ("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        )
    return causes


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        columns = tuple(
            PrinterColumn(c["name"], c.get("type", "string"), c["jsonPath"], c.get("priority", 0))
            for c in version.get("additionalPrinterColumns") or []
            if isinstance(c, dict) and "name" in c and "jsonPath" in c
        )
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                status="status" in (version.get("subresources") or {}),
                categories=tuple(names.get("categories") or ()),
                custom=True,
                schema=schema,
                printer_columns=columns,
                defaults=has_defaults(schema),
            )
        )
    return out


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))

    def condition(kind: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True",
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }

    return {
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition(
                "Established", "InitialNamesAccepted", "the initial names have been accepted"
            ),
        ],
        "acceptedNames": names,
        "storedVersions": [storage],
    }
