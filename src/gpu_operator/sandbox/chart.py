"""Install the Helm chart into the sandbox as ``helm install`` would: render it with the real
``helm`` binary (``helm template --include-crds`` with the user's ``--set`` values), then apply
every object — CRDs first, hooks left out (nothing to upgrade on a fresh install)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox.rest import Rest

Obj = dict[str, Any]
RELEASE = "gpu-operator"
REPO = Path(__file__).resolve().parents[3]

# kind → (REST resource for sandbox.rest, namespaced)
KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1/customresourcedefinitions", False),
    "ServiceAccount": ("v1/serviceaccounts", True),
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ClusterRole": ("rbac.authorization.k8s.io/v1/clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1/clusterrolebindings", False),
    "Role": ("rbac.authorization.k8s.io/v1/roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1/rolebindings", True),
    "DaemonSet": ("daemonsets", True),
    "Deployment": ("deployments", True),
    "ClusterPolicy": ("nvidia.com/v1/clusterpolicies", False),
    "NVIDIADriver": ("nvidia.com/v1alpha1/nvidiadrivers", False),
    "RuntimeClass": ("node.k8s.io/v1/runtimeclasses", False),
    "PriorityClass": ("scheduling.k8s.io/v1/priorityclasses", False),
}


def find_helm() -> Path:
    for candidate in (os.environ.get("HELM"), REPO / ".tools/helm", shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ConfigError("helm not found: run `make test` once (it fetches .tools/helm) or set HELM")


PACKAGED_CHART = Path(__file__).resolve().parents[1] / "chart"
"""The chart as package data (``gpu_operator/chart``: in a checkout, a link to
``deployments/gpu-operator``; in a wheel, the chart's files). A checkout's own path is shown
first, as upstream's docs name it."""


def chart_dir() -> Path:
    for chart in (REPO / "deployments/gpu-operator", PACKAGED_CHART):
        if (chart / "Chart.yaml").is_file():
            return chart
    raise ConfigError(f"the Helm chart is not at {PACKAGED_CHART}: reinstall gpu-operator")


def render(values: Sequence[str], namespace: str = "gpu-operator") -> list[Obj]:
    """``helm template`` with ``--set`` values; the objects, hooks left out."""
    argv = [str(find_helm()), "template", RELEASE, str(chart_dir()), "-n", namespace]
    argv.append("--include-crds")
    for value in values:
        argv += ["--set", value]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise ConfigError(f"helm template failed: {done.stderr.strip()}")
    # libyaml where PyYAML has it: helm's output carries the CRDs (~400 kB), 10x faster.
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    objects = [o for o in yaml.load_all(done.stdout, Loader=loader) if o]
    return [o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})]


def install(rest: Rest, objects: list[Obj], namespace: str = "gpu-operator") -> list[str]:
    """Apply ``objects`` (server-side apply, manager ``sandbox``); the names applied."""
    if rest.get("namespaces", namespace) is None:
        rest.create(
            "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    first = sorted(objects, key=lambda o: 0 if o["kind"] == "CustomResourceDefinition" else 1)
    applied = []
    for obj in first:
        kind = obj["kind"]
        if kind not in KINDS:
            raise ConfigError(f"the sandbox can't install a {kind} ({obj['metadata']['name']})")
        resource, namespaced = KINDS[kind]
        ns = (obj["metadata"].get("namespace") or namespace) if namespaced else None
        if namespaced:
            obj["metadata"]["namespace"] = ns
        rest.apply(resource, obj, ns)
        applied.append(f"{kind}/{obj['metadata']['name']}")
    return applied
