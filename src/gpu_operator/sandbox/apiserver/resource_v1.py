"""``resource.k8s.io/v1`` (Dynamic Resource Allocation, GA in Kubernetes 1.34): the four kinds'
OpenAPI schemas (every v1 field, so ``fieldValidation=Strict`` accepts what a real server does),
their defaults (``allocationMode: ExactCount``, ``count: 1``) and the checks a schema can't say,
with the real server's messages: exactly one of ``exactly``/``firstAvailable``, ``count`` and
``allocationMode``, unique request names, CEL that compiles, where a slice's devices are, an
immutable claim spec; and a pod's ``spec.resourceClaims`` and containers' ``resources.claims``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gpu_operator.sandbox.apiserver.validation import Cause, check_name
from gpu_operator.sandbox.dra.cel import CelError, compile_selector

Obj = dict[str, Any]
GROUP = "resource.k8s.io"

_STRING: Obj = {"type": "string"}
_BOOL: Obj = {"type": "boolean"}
_INT: Obj = {"type": "integer"}
_OPEN: Obj = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STRINGS: Obj = {"type": "array", "items": _STRING}
_QUANTITY: Obj = {"x-kubernetes-int-or-string": True}


def _object(required: tuple[str, ...] = (), **properties: Obj) -> Obj:
    out: Obj = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    return out


def _list(item: Obj, max_items: int | None = None) -> Obj:
    out: Obj = {"type": "array", "items": item}
    if max_items is not None:
        out["maxItems"] = max_items
    return out


def _map(value: Obj) -> Obj:
    return {"type": "object", "additionalProperties": value}


_SELECTOR = _object(cel=_object(("expression",), expression=_STRING))
_OPAQUE = _object(("driver", "parameters"), driver=_STRING, parameters=_OPEN)
_TOLERATION = _object(
    key=_STRING,
    operator={"type": "string", "enum": ["Exists", "Equal"]},
    value=_STRING,
    effect={"type": "string", "enum": ["NoSchedule", "NoExecute"]},
    tolerationSeconds=_INT,
)
_CAPACITY_REQUESTS = _object(requests=_map(_QUANTITY))
_MODE = {"type": "string", "enum": ["All", "ExactCount"]}
_EXACT = _object(
    ("deviceClassName",),
    deviceClassName=_STRING,
    selectors=_list(_SELECTOR, 32),
    allocationMode=_MODE,
    count=_INT,
    adminAccess=_BOOL,
    tolerations=_list(_TOLERATION, 16),
    capacity=_CAPACITY_REQUESTS,
)
_SUBREQUEST = _object(
    ("name", "deviceClassName"),
    name=_STRING,
    deviceClassName=_STRING,
    selectors=_list(_SELECTOR, 32),
    allocationMode=_MODE,
    count=_INT,
    tolerations=_list(_TOLERATION, 16),
    capacity=_CAPACITY_REQUESTS,
)
_REQUEST = _object(("name",), name=_STRING, exactly=_EXACT, firstAvailable=_list(_SUBREQUEST, 8))
_CLAIM_SPEC = _object(
    devices=_object(
        requests=_list(_REQUEST, 32),
        constraints=_list(
            _object(requests=_STRINGS, matchAttribute=_STRING, distinctAttribute=_STRING), 32
        ),
        config=_list(_object(requests=_STRINGS, opaque=_OPAQUE), 32),
    )
)
_RESULT = _object(
    ("request", "driver", "pool", "device"),
    request=_STRING,
    driver=_STRING,
    pool=_STRING,
    device=_STRING,
    adminAccess=_BOOL,
    tolerations=_list(_TOLERATION),
    bindingConditions=_STRINGS,
    bindingFailureConditions=_STRINGS,
    shareID=_STRING,
    consumedCapacity=_map(_QUANTITY),
)
_CLAIM_STATUS = _object(
    allocation=_object(
        devices=_object(
            results=_list(_RESULT, 32),
            config=_list(
                _object(source=_STRING, requests=_STRINGS, opaque=_OPAQUE),
            ),
        ),
        nodeSelector=_OPEN,
        allocationTimestamp=_STRING,
    ),
    reservedFor=_list(
        _object(
            ("resource", "name", "uid"),
            apiGroup=_STRING,
            resource=_STRING,
            name=_STRING,
            uid=_STRING,
        ),
        256,
    ),
    devices=_list(_OPEN),
)
_ATTRIBUTE = _object(int=_INT, bool=_BOOL, string=_STRING, version=_STRING)
_COUNTERS = _map(_object(("value",), value=_QUANTITY))
_DEVICE = _object(
    ("name",),
    name=_STRING,
    attributes=_map(_ATTRIBUTE),
    capacity=_map(_object(("value",), value=_QUANTITY, requestPolicy=_OPEN)),
    consumesCounters=_list(
        _object(("counterSet", "counters"), counterSet=_STRING, counters=_COUNTERS), 2
    ),
    nodeName=_STRING,
    nodeSelector=_OPEN,
    allNodes=_BOOL,
    taints=_list(
        _object(
            ("key", "effect"),
            key=_STRING,
            value=_STRING,
            effect={"type": "string", "enum": ["NoSchedule", "NoExecute"]},
            timeAdded=_STRING,
        ),
        4,
    ),
    bindsToNode=_BOOL,
    bindingConditions=_STRINGS,
    bindingFailureConditions=_STRINGS,
    allowMultipleAllocations=_BOOL,
)
_SLICE_SPEC = _object(
    ("driver", "pool"),
    driver=_STRING,
    pool=_object(
        ("name", "resourceSliceCount"),
        name=_STRING,
        generation=_INT,
        resourceSliceCount={"type": "integer", "minimum": 1},
    ),
    nodeName=_STRING,
    nodeSelector=_OPEN,
    allNodes=_BOOL,
    perDeviceNodeSelection=_BOOL,
    devices=_list(_DEVICE, 128),
    sharedCounters=_list(_object(("name", "counters"), name=_STRING, counters=_COUNTERS), 8),
)


def _root(required: tuple[str, ...] = (), **properties: Obj) -> Obj:
    return _object(required, apiVersion=_STRING, kind=_STRING, metadata=_OPEN, **properties)


SCHEMAS: dict[str, Obj] = {
    "deviceclasses": _root(
        ("spec",),
        spec=_object(
            selectors=_list(_SELECTOR, 32),
            config=_list(_object(opaque=_OPAQUE), 32),
            extendedResourceName=_STRING,
        ),
    ),
    "resourceslices": _root(("spec",), spec=_SLICE_SPEC),
    "resourceclaims": _root(("spec",), spec=_CLAIM_SPEC, status=_CLAIM_STATUS),
    "resourceclaimtemplates": _root(
        ("spec",), spec=_object(("spec",), metadata=_OPEN, spec=_CLAIM_SPEC)
    ),
}


def _quote(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- defaults ------------------------------------------------------------------------------


def _default_request(raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    raw.setdefault("allocationMode", "ExactCount")
    if raw["allocationMode"] == "ExactCount":
        raw.setdefault("count", 1)


def default_claim_spec(spec: Any) -> None:
    """v1's defaults: each request (and subrequest) is ``ExactCount`` of ``1`` unless it says."""
    devices = spec.get("devices") if isinstance(spec, dict) else None
    requests = devices.get("requests") if isinstance(devices, dict) else None
    for request in requests if isinstance(requests, list) else []:
        if not isinstance(request, dict):
            continue
        _default_request(request.get("exactly"))
        for sub in request.get("firstAvailable") or []:
            _default_request(sub)


def apply_defaults(plural: str, obj: Obj) -> None:
    if plural == "resourceclaims":
        default_claim_spec(obj.get("spec"))
    elif plural == "resourceclaimtemplates" and isinstance(obj.get("spec"), dict):
        default_claim_spec(obj["spec"].get("spec"))


# -- checks --------------------------------------------------------------------------------


def _check_selectors(selectors: Any, where: str) -> list[Cause]:
    causes: list[Cause] = []
    for n, selector in enumerate(selectors if isinstance(selectors, list) else []):
        expression = ((selector or {}).get("cel") or {}).get("expression")
        if not isinstance(expression, str):
            continue
        path = f"{where}[{n}].cel.expression"
        if not expression.strip():
            causes.append((path, "Required value"))
            continue
        try:
            compile_selector(expression)
        except CelError as error:
            causes.append((path, f"Invalid value: {_quote(expression)}: {error}"))
    return causes


def _check_count(raw: Mapping[str, Any], where: str) -> list[Cause]:
    mode, count = raw.get("allocationMode"), raw.get("count")
    if mode == "All" and count not in (None, 0):
        return [
            (
                f"{where}.count",
                f"Invalid value: {count}: must not be specified when allocationMode is 'All'",
            )
        ]
    if mode in (None, "ExactCount") and isinstance(count, int) and count <= 0:
        return [(f"{where}.count", f"Invalid value: {count}: must be greater than zero")]
    return []


def _label(name: Any, where: str) -> list[Cause]:
    if not isinstance(name, str) or not name:
        return [(where, "Required value")]
    return [(where, problem) for _, problem in check_name(name, "label")]


def check_claim_spec(spec: Any, where: str) -> list[Cause]:
    devices = spec.get("devices") if isinstance(spec, dict) else None
    if not isinstance(devices, dict):
        return []
    causes: list[Cause] = []
    requests: list[Any] = devices.get("requests") or []
    if not isinstance(requests, list):
        return []
    seen: set[str] = set()
    for n, request in enumerate(requests):
        if not isinstance(request, dict):
            continue
        path = f"{where}.devices.requests[{n}]"
        name = request.get("name")
        causes += _label(name, f"{path}.name")
        if isinstance(name, str) and name in seen:
            causes.append((f"{path}.name", f"Duplicate value: {_quote(name)}"))
        seen.add(name if isinstance(name, str) else "")
        exactly, first = request.get("exactly"), request.get("firstAvailable")
        if exactly is None and not first:
            causes.append(
                (path, "Required value: exactly one of `exactly` or `firstAvailable` is required")
            )
        elif exactly is not None and first:
            causes.append(
                (
                    path,
                    "Invalid value: exactly one of `exactly` or `firstAvailable` is required, "
                    "but multiple fields are set",
                )
            )
        if isinstance(exactly, dict):
            causes += _check_count(exactly, f"{path}.exactly")
            causes += _check_selectors(exactly.get("selectors"), f"{path}.exactly.selectors")
        subs: set[str] = set()
        for m, sub in enumerate(first if isinstance(first, list) else []):
            if not isinstance(sub, dict):
                continue
            sub_path = f"{path}.firstAvailable[{m}]"
            causes += _label(sub.get("name"), f"{sub_path}.name")
            if sub.get("name") in subs:
                causes.append((f"{sub_path}.name", f"Duplicate value: {_quote(sub.get('name'))}"))
            subs.add(str(sub.get("name")))
            causes += _check_count(sub, sub_path)
            causes += _check_selectors(sub.get("selectors"), f"{sub_path}.selectors")
    for n, constraint in enumerate(devices.get("constraints") or []):
        for m, name in enumerate((constraint or {}).get("requests") or []):
            if str(name).split("/", 1)[0] not in seen:
                causes.append(
                    (
                        f"{where}.devices.constraints[{n}].requests[{m}]",
                        f"Invalid value: {_quote(name)}: must be the name of a request in the "
                        "claim or the name of a request and a subrequest separated by '/'",
                    )
                )
    return causes


_WHERE = ("nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection")
_MAX_PARTITIONED = 64  # devices in a slice when any consumes counters or has taints
_MAX_DESCRIBED = 32  # attributes and capacities of one device
_MAX_COUNTERS = 32  # counters in a counter set or a device's consumption of one (Kubernetes')


def _check_slice(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return []
    causes: list[Cause] = []
    given = [f for f in _WHERE if spec.get(f) not in (None, "", False)]
    if len(given) != 1:
        listed = ", ".join(f"`{f}`" for f in _WHERE)
        problem = (
            f"Required value: exactly one of {listed} is required"
            if not given
            else f"Invalid value: {{{', '.join(f'`{f}`' for f in given)}}}: exactly one of "
            f"{listed} is required, but multiple fields are set"
        )
        causes.append(("spec", problem))
    if spec.get("sharedCounters") is not None and spec.get("devices") is not None:
        # Kubernetes 1.35: a pool's counter sets are published in slices of their own.
        causes.append(
            ("spec", 'Invalid value: "": only one of `sharedCounters` or `devices` is allowed')
        )
    for n, counter_set in enumerate(spec.get("sharedCounters") or []):
        counters = (counter_set or {}).get("counters") if isinstance(counter_set, dict) else None
        if isinstance(counters, dict) and len(counters) > _MAX_COUNTERS:
            causes.append(
                (
                    f"spec.sharedCounters[{n}].counters",
                    f"Too many: {len(counters)}: must have at most {_MAX_COUNTERS} items",
                )
            )
    names: set[str] = set()
    counter_sets = {c.get("name") for c in spec.get("sharedCounters") or [] if isinstance(c, dict)}
    devices = [d for d in spec.get("devices") or [] if isinstance(d, dict)]
    if len(devices) > _MAX_PARTITIONED and any(
        d.get("consumesCounters") or d.get("taints") for d in devices
    ):
        causes.append(
            (
                "spec.devices",
                f"Too many: {len(devices)}: must have at most {_MAX_PARTITIONED} items",
            )
        )
    for n, device in enumerate(spec.get("devices") or []):
        if not isinstance(device, dict):
            continue
        name = device.get("name")
        causes += _label(name, f"spec.devices[{n}].name")
        described = len(device.get("attributes") or {}) + len(device.get("capacity") or {})
        if described > _MAX_DESCRIBED:
            causes.append(
                (
                    f"spec.devices[{n}]",
                    f"Invalid value: {described}: the total number of attributes and "
                    f"capacities must not exceed {_MAX_DESCRIBED}",
                )
            )
        if name in names:
            causes.append((f"spec.devices[{n}].name", f"Duplicate value: {_quote(name)}"))
        names.add(str(name))
        for m, consumed in enumerate(device.get("consumesCounters") or []):
            counter_set = (consumed or {}).get("counterSet")
            counted = (consumed or {}).get("counters")
            if isinstance(counted, dict) and len(counted) > _MAX_COUNTERS:
                causes.append(
                    (
                        f"spec.devices[{n}].consumesCounters[{m}].counters",
                        f"Too many: {len(counted)}: must have at most {_MAX_COUNTERS} items",
                    )
                )
            if counter_sets and counter_set not in counter_sets:
                causes.append(
                    (
                        f"spec.devices[{n}].consumesCounters[{m}].counterSet",
                        f"Invalid value: {_quote(counter_set)}: must reference a counter set "
                        "in spec.sharedCounters",
                    )
                )
        per_device = bool(spec.get("perDeviceNodeSelection"))
        set_here = [f for f in ("nodeName", "nodeSelector", "allNodes") if device.get(f)]
        if set_here and not per_device:
            causes.append(
                (
                    f"spec.devices[{n}].{set_here[0]}",
                    "Forbidden: only allowed when spec.perDeviceNodeSelection is true",
                )
            )
        elif per_device and len(set_here) != 1:
            causes.append(
                (
                    f"spec.devices[{n}]",
                    "Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes` is "
                    "required when spec.perDeviceNodeSelection is true",
                )
            )
    return causes


def check(plural: str, obj: Obj) -> list[Cause]:
    """The checks of ``plural``'s kind beyond its schema."""
    spec = obj.get("spec")
    if plural == "deviceclasses" and isinstance(spec, dict):
        return _check_selectors(spec.get("selectors"), "spec.selectors")
    if plural == "resourceslices":
        return _check_slice(spec)
    if plural == "resourceclaims":
        return check_claim_spec(spec, "spec")
    if plural == "resourceclaimtemplates" and isinstance(spec, dict):
        return check_claim_spec(spec.get("spec"), "spec.spec")
    return []


def check_update(plural: str, old: Obj, new: Obj) -> list[Cause]:
    """What may not change: a claim's or a template's spec; a slice's driver, pool name and
    node name."""
    if plural in ("resourceclaims", "resourceclaimtemplates"):
        if old.get("spec") != new.get("spec"):
            return [("spec", "Invalid value: field is immutable")]
        return []
    if plural != "resourceslices":
        return []
    causes: list[Cause] = []
    before, after = old.get("spec") or {}, new.get("spec") or {}
    for path in (("driver",), ("pool", "name"), ("nodeName",)):
        was, now = before, after
        for part in path:
            was = was.get(part) if isinstance(was, dict) else None
            now = now.get(part) if isinstance(now, dict) else None
        if was != now:
            causes.append(
                (f"spec.{'.'.join(path)}", f"Invalid value: {_quote(now)}: field is immutable")
            )
    return causes


def check_pod(spec: Any) -> list[Cause]:
    """A pod's ``spec.resourceClaims`` and the containers' ``resources.claims`` naming them."""
    if not isinstance(spec, dict):
        return []
    causes: list[Cause] = []
    names: list[str] = []
    for n, claim in enumerate(spec.get("resourceClaims") or []):
        if not isinstance(claim, dict):
            continue
        path = f"spec.resourceClaims[{n}]"
        name = claim.get("name")
        causes += _label(name, f"{path}.name")
        if name in names:
            causes.append((f"{path}.name", f"Duplicate value: {_quote(name)}"))
        names.append(str(name))
        sources = [k for k in ("resourceClaimName", "resourceClaimTemplateName") if claim.get(k)]
        if not sources:
            causes.append(
                (
                    path,
                    "Required value: must specify one of: `resourceClaimName`, "
                    "`resourceClaimTemplateName`",
                )
            )
        elif len(sources) == 2:
            causes.append(
                (
                    path,
                    "Invalid value: at most one of `resourceClaimName` or "
                    "`resourceClaimTemplateName` may be set",
                )
            )
    supported = ", ".join(_quote(n) for n in names)
    for group in ("initContainers", "containers"):
        for n, container in enumerate(spec.get(group) or []):
            resources = (container or {}).get("resources") or {}
            for m, claim in enumerate(resources.get("claims") or []):
                name = (claim or {}).get("name")
                if name not in names:
                    causes.append(
                        (
                            f"spec.{group}[{n}].resources.claims[{m}].name",
                            f"Unsupported value: {_quote(name)}: supported values: {supported}",
                        )
                    )
    return causes
