"""Upstream's ClusterPolicy fields against our model. A spec may carry every field NVIDIA's CRD
has had (``upstream_keys``, generated); those our model acts on go to the model, the others are
type-checked against upstream's type and reported ("accepted, not used"), and a key that no
release ever had is refused with the nearest known name. ``NOT_USED`` says why a field does
nothing here; docs/comparison.md lists the same table."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.operator.openapi import Schema, model_schema, paths
from gpu_operator.operator.upstream_keys import POLICY_LEGACY, POLICY_MAIN

KNOWN: dict[str, str] = {**POLICY_LEGACY, **POLICY_MAIN}

VM_OPERANDS = (
    "vgpuManager",
    "vgpuDeviceManager",
    "vfioManager",
    "sandboxDevicePlugin",
    "kataSandboxDevicePlugin",
    "ccManager",
)

# Upstream field (a path, or a section) -> why it has no effect here. Fields of the model listed
# here are parsed and type-checked like any other; fields upstream has that the model lacks are
# reported with the reason of their nearest listed ancestor, or "not implemented".
NOT_USED: dict[str, str] = {
    "operator.defaultRuntime": "the container runtime is detected per node",
    "operator.initContainer": "no CUDA base init containers: validation runs the operator image",
    "operator.use_ocp_driver_toolkit": "no OpenShift Driver Toolkit builds",
    "operator.labels": "not applied to operand objects",
    "operator.annotations": "not applied to operand objects",
    "driver.use_ocp_driver_toolkit": "no OpenShift Driver Toolkit builds",
    "driver.useOpenKernelModules": "deprecated: use driver.kernelModuleType",
    "driver.virtualTopology": "the vGPU topology daemon is not implemented",
    "driver.rollingUpdate": "the driver DaemonSet is OnDelete; upgrades follow upgradePolicy",
    "driver.repoConfig.destinationDir": "the repo files are mounted where the OS expects them",
    "dcgmExporter.hpcJobMapping": "HPC job mapping is not implemented",
    "gds": "GPUDirect Storage (nvidia-fs) is not deployed; only GDS_ENABLED reaches the driver",
    "gdrcopy": "GDRCopy is not deployed; only GDRCOPY_ENABLED reaches the driver",
    "kataManager": "deprecated upstream and never deployed",
    "psp": "PodSecurityPolicy is gone since Kubernetes 1.25",
    "psa": "the operator namespace is not labelled pod-security.kubernetes.io/*=privileged: "
    "label it yourself",
    "sandboxWorkloads": "VM workloads (vm-passthrough, vm-vgpu) are not implemented",
    "cdi.default": "deprecated: CDI is the default when cdi.enabled",
    "validator.vfioPCI": "no VM operands",
    "validator.vgpuManager": "no VM operands",
    "validator.vgpuDevices": "no VM operands",
    **dict.fromkeys(VM_OPERANDS, "VM and confidential-computing operands are not implemented"),
}
# Reported only when sandbox workloads are on (upstream deploys them only then).
SANDBOX_ONLY = (*VM_OPERANDS, "validator.vfioPCI", "validator.vgpuManager", "validator.vgpuDevices")


@dataclass
class Sorted:
    """A spec split: what the model takes, the upstream-only fields set, and problems."""

    kept: dict[str, Any]
    set_paths: list[str] = field(default_factory=list)
    upstream_only: list[str] = field(default_factory=list)
    off: list[str] = field(default_factory=list)  # sections with ``enabled: false``
    problems: list[str] = field(default_factory=list)


def _children(path: str) -> set[str]:
    prefix = f"{path}." if path else ""
    return {
        p[len(prefix) :].split(".", 1)[0]
        for p in KNOWN
        if p.startswith(prefix) and "." not in p[len(prefix) :].rstrip(".")
    }


def _free(node: Mapping[str, Any]) -> bool:
    """A model node that takes any content (a map, a free-form object, a scalar)."""
    if node.get("type") == "array":
        return _free(node.get("items") or {})
    return not node.get("properties")


_JSON = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "struct": (dict,),
    "object": (dict,),
}


def type_problem(path: str, value: Any, kind: str) -> str | None:
    """Why ``value`` is not of upstream's type ``kind`` (None when it is)."""
    if value is None:
        return None
    if kind == "int-or-string":
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
    elif kind.startswith("map<"):
        ok = isinstance(value, dict)
    elif kind.startswith("array<"):
        ok = isinstance(value, list)
    else:
        types = _JSON.get(kind, (object,))
        ok = isinstance(value, types) and not (bool in types) ^ isinstance(value, bool)
    if ok:
        return None
    return f"spec.{path}: expected {kind} (upstream's type), got {type(value).__name__}"


def nearest(path: str, name: str, model: Mapping[str, Any] | None) -> str:
    known = _children(path) | set(((model or {}).get("properties") or {}).keys())
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
    lowered = {k.lower(): k for k in known}
    hit = lowered.get(name.lower()) or (close[0] if close else None)
    where = f"spec.{path}." if path else "spec."
    return f"{where}{hit}" if hit else f"one of {', '.join(sorted(known))}"


def _is_set(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get("enabled") is False:
            return False
        return any(_is_set(v) for v in value.values())
    if isinstance(value, (list, str)):
        return bool(value)
    return value is not None and value is not False


def sort_spec(data: Mapping[str, Any], model: Schema) -> Sorted:
    """Walk a spec against the model's schema and upstream's table."""
    out = Sorted(kept={})
    out.kept = _walk(data, "", model, out)
    return out


def _walk(data: Mapping[str, Any], path: str, model: Schema | None, out: Sorted) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    props = (model or {}).get("properties") or {}
    for key, value in data.items():
        here = f"{path}.{key}" if path else str(key)
        if _is_set(value):
            out.set_paths.append(here)
        if isinstance(value, dict) and value.get("enabled") is False:
            out.off.append(here)
        child = props.get(key)
        if child is not None:
            kept[key] = _descend(value, here, child, out)
            continue
        if here in KNOWN:
            problem = type_problem(here, value, KNOWN[here])
            if problem:
                out.problems.append(problem)
            elif _is_set(value):
                out.upstream_only.append(here)
            continue
        out.problems.append(
            f"spec.{here}: unknown field (no release of NVIDIA's ClusterPolicy has it); "
            f"did you mean {nearest(path, str(key), model)}?"
        )
    return kept


def _descend(value: Any, here: str, child: Schema, out: Sorted) -> Any:
    if _free(child):
        return value
    if isinstance(value, dict) and child.get("properties"):
        return _walk(value, here, child, out)
    if isinstance(value, list) and child.get("type") == "array":
        items = child.get("items") or {}
        return [_walk(v, here + "[]", items, out) if isinstance(v, dict) else v for v in value]
    return value


def reason(path: str) -> str:
    """Why an upstream field does nothing here: the entry of it or its nearest ancestor."""
    parts = path.replace("[]", "").split(".")
    for n in range(len(parts), 0, -1):
        found = NOT_USED.get(".".join(parts[:n]))
        if found:
            return found
    return "not implemented"


def _reported(path: str) -> bool:
    bare = path.replace("[]", "")
    return any(bare == p or bare.startswith(p + ".") for p in NOT_USED)


def accepted_not_used(result: Sorted, *, sandbox_workloads: bool) -> list[str]:
    """``["spec.gds: GPUDirect Storage …", …]``: the fields set that do nothing here, each once
    (at the shallowest path reported)."""
    found = [p for p in result.set_paths if _reported(p)] + result.upstream_only
    shallow: list[str] = []
    for path in sorted(set(found), key=lambda p: (p.count("."), p)):
        if any(path.startswith(s + ".") for s in shallow + result.off):
            continue
        section = path.split(".", 1)[0]
        top = path.split(".")[:2]
        if not sandbox_workloads and (section in SANDBOX_ONLY or ".".join(top) in SANDBOX_ONLY):
            continue
        shallow.append(path)
    return [f"spec.{p}: {reason(p)}" for p in shallow]


# Chart values (patterns; ``*`` is any operand section) -> why they do nothing here. The chart's
# NOTES list those a release sets (templates/_upstream_keys.tpl, generated from this table).
# Policy fields the chart passes through are reported by the operator instead (NOT_USED).
VALUES_NOT_USED: dict[str, str] = {
    "*.nodeSelector": "v1.6-era per-operand scheduling: operands go to GPU nodes by label",
    "*.affinity": "v1.6-era per-operand scheduling: operands go to GPU nodes by label",
    "*.tolerations": "v1.6-era per-operand tolerations: use daemonsets.tolerations",
    "*.podSecurityContext": "v1.9-era per-operand pod security: use daemonsets.podSecurityContext",
    "*.priorityClassName": "v1.7-era per-operand priority class: use daemonsets.priorityClassName",
    "gfd.migStrategy": "v1.6-era: use mig.strategy",
    "gfd.discoveryIntervalSeconds": "v1.6-era: use the GFD_SLEEP_INTERVAL env of gfd",
    "operator.validator": "v1.6-era CUDA sample image: validation runs the operator image",
    "operator.env": "the operator Deployment takes no extra env",
    "operator.cleanupCRD": "the CRD is kept on uninstall (delete it with kubectl)",
    "operator.initContainer": NOT_USED["operator.initContainer"],
    "operator.use_ocp_driver_toolkit": NOT_USED["operator.use_ocp_driver_toolkit"],
    "driver.use_ocp_driver_toolkit": NOT_USED["driver.use_ocp_driver_toolkit"],
    "driver.useOpenKernelModules": NOT_USED["driver.useOpenKernelModules"],
    "driver.virtualTopology": NOT_USED["driver.virtualTopology"],
    "driver.rollingUpdate": NOT_USED["driver.rollingUpdate"],
    "driver.repoConfig.destinationDir": NOT_USED["driver.repoConfig.destinationDir"],
    "dcgmExporter.hpcJobMapping": NOT_USED["dcgmExporter.hpcJobMapping"],
    "gds": NOT_USED["gds"],
    "gdrcopy": NOT_USED["gdrcopy"],
    "kataManager": NOT_USED["kataManager"],
    "psp": NOT_USED["psp"],
    "psa": NOT_USED["psa"],
    "sandboxWorkloads": NOT_USED["sandboxWorkloads"],
    "cdi.default": NOT_USED["cdi.default"],
    "platform.openshift": "no OpenShift-specific objects (SCCs) are rendered",
    "nfd.nodefeaturerules": "no NodeFeatureRules: our node labeller writes the labels it needs",
    "node-feature-discovery": "no NFD subchart: our node labeller replaces it (nfd.enabled)",
    "gpuCluster": "the GPUCluster CRD is not implemented: draDriver.enabled deploys the DRA "
    "driver with the ClusterPolicy",
    "draDriver.computeDomains": "Multi-Node NVLink compute domains are not implemented",
    **{name: NOT_USED[name] for name in VM_OPERANDS},
}


def values_not_used(values_keys: Mapping[str, str]) -> list[tuple[str, str]]:
    """``VALUES_NOT_USED`` expanded over the values keys upstream has had: (path, reason),
    shallowest first, a path under a listed one left out."""
    found: dict[str, str] = {}
    for pattern, why in VALUES_NOT_USED.items():
        rule = re.compile(re.escape(pattern).replace(r"\*", "[^.]+") + "$")
        for path in values_keys:
            section = path.split(".", 1)[0]
            if rule.match(path) and not (
                pattern[0] == "*" and section in ("operator", "daemonsets")
            ):
                found[path] = why
    out: list[tuple[str, str]] = []
    for path in sorted(found, key=lambda p: (p.count("."), p)):
        if not any(path.startswith(p + ".") for p, _ in out):
            out.append((path, found[path]))
    return out


def policy_not_used() -> list[tuple[str, str]]:
    """Every upstream spec field that does nothing here, with why: the ``NOT_USED`` entries and
    the upstream fields our model lacks (shallowest path of each), sorted."""
    return sorted({**NOT_USED, **{p: reason(p) for p in upstream_only()}}.items())


def upstream_only() -> list[str]:
    """The upstream spec fields our model lacks (shallowest path of each)."""
    from gpu_operator.operator.policy_v1 import ClusterPolicySpec  # policy_v1 imports us

    model = paths(model_schema(ClusterPolicySpec))
    free = [p for p, kind in model.items() if kind in ("object", "array<object>") or "map<" in kind]
    out: list[str] = []
    for path in sorted(KNOWN, key=lambda p: (p.count("."), p)):
        covered = any(path.startswith((f + ".", f + "[]")) for f in free + out)
        if path not in model and not covered:
            out.append(path)
    return out
