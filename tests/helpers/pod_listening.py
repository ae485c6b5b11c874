"""Shared by the tests that every container we render listens on its pod's own address (the
operator's goldens in the unit tier, the chart as the real helm renders it in the contract
tier): the sandbox's process spec of a rendered container, and the check itself."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.listening import POD_IP_ENV, listen_address
from gpu_operator.sandbox.podspec import ImageCatalogue, process_spec, volume_paths

POD_IP = "127.9.0.3"
EVERY_INTERFACE_ADDRESS = ("0.0.0.0:", "[::]:")


def spec_for(pod: dict[str, Any], container: dict[str, Any], tmp_path: Path) -> Any:
    """The process the sandbox would start for ``container`` of ``pod``."""
    root, pod_dir = tmp_path / "node", tmp_path / "pod"
    return process_spec(
        pod,
        container,
        node_root=root,
        pod_dir=pod_dir,
        volumes=volume_paths(pod, root, pod_dir, lambda ns, name: {}),
        config_maps=lambda ns, name: {},
        catalogue=ImageCatalogue(),
        base_env={},
    )


def pod_with(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "gpu-operator", "uid": "u"},
        "spec": {"containers": [container]},
        "status": {"podIP": POD_IP},
    }


def workload_containers(objects: Iterable[dict[str, Any]]) -> list[pytest.ParameterSet]:
    """(pod template, container) of every Deployment and DaemonSet, named kind/name/container."""
    found = []
    for obj in objects:
        template = (obj.get("spec") or {}).get("template")
        if obj.get("kind") not in ("Deployment", "DaemonSet") or not template:
            continue
        for container in (template["spec"].get("initContainers") or []) + template["spec"][
            "containers"
        ]:
            name = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            found.append(pytest.param(template, container, id=name))
    return found


def assert_listens_on_the_pods_address(
    template: dict[str, Any], container: dict[str, Any], tmp_path: Path
) -> None:
    """No listen address on every interface is left in the container's argv or env; a default
    one (``:PORT``) binds the pod's address."""
    pod = {**pod_with(container), "spec": template["spec"]}
    spec = spec_for(pod, container, tmp_path)
    assert spec.env[POD_IP_ENV] == POD_IP  # a default listen address binds it
    everything = [*spec.argv, *spec.env.values()]
    left = [v for v in everything if v.startswith(":") and v[1:].isdigit()]
    left += [v for v in everything if any(a in v for a in EVERY_INTERFACE_ADDRESS)]
    assert left == []
    for port in container.get("ports") or []:
        # as the listener sees a default ":PORT": the pod's address, its port
        assert listen_address("", port["containerPort"], spec.env)[0] == POD_IP
