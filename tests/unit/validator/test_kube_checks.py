"""The cuda and plugin components against the API server emulator: the validation pods have
upstream's shape and node, an earlier pod is replaced, capacity polling picks MIG resources
first, and failures name the pod or the node and what to look at."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Pod

from gpu_operator.validator.kube_checks import validate_cuda, validate_plugin
from gpu_operator.validator.running import ValidationFailed
from gpu_operator.validator.workloads import PodSettings, gpu_resource
from helpers.validator_cluster import add_node, mark_pods, set_capacity

POD = PodSettings(
    node="gpu-node-1", namespace="gpu-operator", image="registry.example/gpu-operator:v1"
)


def kubelet_for(client: Client) -> Callable[[float], None]:
    """A ``sleep`` during which the kubelet runs the cuda pod to completion."""

    def sleep(_seconds: float) -> None:
        mark_pods(client, "nvidia-cuda-validator", "Succeeded")

    return sleep


def pods(client: Client, app: str) -> list[Pod]:
    return list(client.list(Pod, namespace="gpu-operator", labels={"app": app}))


def test_the_cuda_pod_has_upstreams_shape_runs_on_this_node_and_success_is_awaited(
    client: Client,
) -> None:
    kubelet = kubelet_for(client)
    message = validate_cuda(client, POD, attempts=3, interval_s=5, sleep=kubelet)
    assert message.startswith("nvidia-cuda-validator pod nvidia-cuda-validator-")

    [pod] = pods(client, "nvidia-cuda-validator")
    assert pod.spec is not None
    assert pod.metadata is not None
    assert pod.spec.nodeName == "gpu-node-1"
    assert pod.spec.restartPolicy == "OnFailure"
    assert pod.spec.serviceAccountName == "nvidia-operator-validator"
    assert pod.metadata.annotations == {
        "nvidia.cdi.k8s.io/container.cuda-validation": "management.nvidia.com/gpu=all"
    }
    [init] = pod.spec.initContainers or []
    assert init.name == "cuda-validation"
    assert init.command == ["vectorAdd"]  # upstream's entry point, in NVIDIA's image and ours
    assert init.image == "registry.example/gpu-operator:v1"
    assert [(e.name, e.value) for e in init.env or []] == [("NVIDIA_VISIBLE_DEVICES", "all")]
    assert pod.spec.tolerations is not None
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"


def test_a_second_cuda_run_replaces_the_first_pod(client: Client) -> None:
    kubelet = kubelet_for(client)
    validate_cuda(client, POD, attempts=3, interval_s=5, sleep=kubelet)
    first = {p.metadata.name for p in pods(client, "nvidia-cuda-validator") if p.metadata}
    validate_cuda(client, POD, attempts=3, interval_s=5, sleep=kubelet)
    second = {p.metadata.name for p in pods(client, "nvidia-cuda-validator") if p.metadata}
    assert len(second) == 1
    assert first != second


def test_a_cuda_pod_that_never_succeeds_fails_naming_the_pod_and_its_log_command(
    client: Client,
) -> None:
    slept: list[float] = []
    with pytest.raises(ValidationFailed) as failure:
        validate_cuda(client, POD, attempts=4, interval_s=5, sleep=slept.append)
    assert slept == [5, 5, 5]
    text = str(failure.value)
    assert text.startswith(
        "cuda validation failed: wait for pod gpu-operator/nvidia-cuda-validator-"
    )
    assert "(4 × 5s)" in text
    assert "kubectl logs -n gpu-operator nvidia-cuda-validator-" in text
    assert "-c cuda-validation" in text


def test_plugin_waits_for_capacity_then_runs_a_pod_asking_for_one_mig_device(
    client: Client,
) -> None:
    add_node(client, "gpu-node-1", {"cpu": "64"})

    def later(_s: float) -> None:  # the device plugin registers between two polls
        set_capacity(client, "gpu-node-1", {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.5gb": "16"})
        mark_pods(client, "nvidia-device-plugin-validator", "Succeeded")

    message = validate_plugin(
        client,
        POD,
        with_workload=True,
        capacity_attempts=3,
        pod_attempts=3,
        interval_s=5,
        sleep=later,
    )
    assert message.endswith("got nvidia.com/mig-1g.5gb")
    [pod] = pods(client, "nvidia-device-plugin-validator")
    assert pod.spec is not None
    [init] = pod.spec.initContainers or []
    assert init.name == "plugin-validation"
    assert init.resources is not None
    assert init.resources.limits == {"nvidia.com/mig-1g.5gb": 1}
    assert init.securityContext is not None
    assert init.securityContext.allowPrivilegeEscalation is False


def test_plugin_without_gpu_capacity_fails_saying_the_device_plugin_is_not_registered(
    client: Client,
) -> None:
    add_node(client, "gpu-node-1", {"cpu": "64"})
    with pytest.raises(ValidationFailed, match="device plugin has not registered"):
        validate_plugin(
            client,
            POD,
            with_workload=False,
            capacity_attempts=2,
            pod_attempts=1,
            interval_s=5,
            sleep=lambda _s: None,
        )


def test_the_resource_choice_prefers_mig_then_gpu_and_ignores_zero() -> None:
    assert gpu_resource({"nvidia.com/gpu": "8"}) == "nvidia.com/gpu"
    assert gpu_resource({"nvidia.com/gpu": "8", "nvidia.com/mig-3g.20gb": "2"}) == (
        "nvidia.com/mig-3g.20gb"
    )
    assert gpu_resource({"nvidia.com/gpu": "0", "cpu": "4"}) is None
    assert gpu_resource({"nvidia.com/gpu.shared": "4"}) == "nvidia.com/gpu.shared"
