"""Each component's check as a callable that returns its status file's content, wired to its
settings and adapters (the kube client is built only for the components that need the API)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gpu_operator.gpu import HardwareSettings
from gpu_operator.kube.settings import KubeSettings
from gpu_operator.names import GPU_RESOURCE, MIG_RESOURCE_PREFIX
from gpu_operator.toolkit.settings import ToolkitSettings
from gpu_operator.validator.driver import validate_driver
from gpu_operator.validator.node_status import NodeStatusExporter
from gpu_operator.validator.running import ValidationFailed
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.toolkit_check import validate_toolkit
from gpu_operator.validator.workloads import PodSettings

Log = Callable[[str], None]


def check_for(
    settings: ValidatorSettings,
    hardware: HardwareSettings,
    kube: KubeSettings,
    pod: PodSettings,
    toolkit: ToolkitSettings,
    *,
    log: Log = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[[], str]:
    """The check of ``settings.component``; returns the status file's content."""
    component = settings.component
    if component == "driver":
        return lambda: validate_driver(settings, hardware)
    if component == "toolkit":

        def toolkit_check() -> str:
            log(validate_toolkit(hardware, toolkit))
            return ""

        return toolkit_check
    if component == "cuda" and not settings.with_workload:
        return lambda: ""
    if not settings.node_name:
        raise ValidationFailed(component, "read NODE_NAME", "not set: the pod must run on a node")
    from gpu_operator.validator.kube_checks import validate_cuda, validate_plugin

    def api_check() -> str:
        from gpu_operator.kube import build_client

        client = build_client(kube)
        try:
            if component == "cuda":
                log(
                    validate_cuda(
                        client,
                        pod,
                        attempts=settings.pod_poll_attempts,
                        interval_s=settings.sleep_interval_s,
                        sleep=sleep,
                    )
                )
            else:
                log(
                    validate_plugin(
                        client,
                        pod,
                        with_workload=settings.with_workload,
                        capacity_attempts=settings.plugin_poll_attempts,
                        pod_attempts=settings.pod_poll_attempts,
                        interval_s=settings.sleep_interval_s,
                        sleep=sleep,
                    )
                )
        finally:
            client.close()
        return ""

    return api_check


def node_status_exporter(
    settings: ValidatorSettings, hardware: HardwareSettings, kube: KubeSettings
) -> NodeStatusExporter:
    """The ``metrics`` component: driver re-check via the driver component, device count from
    the node's capacity when NODE_NAME is set (else -1)."""

    def device_count() -> int:
        if not settings.node_name:
            return -1
        from gpu_operator.kube import build_client
        from gpu_operator.validator.kube_checks import node_capacity

        client = build_client(kube)
        try:
            capacity = node_capacity(client, settings.node_name)
        finally:
            client.close()
        return sum(
            int(v)
            for k, v in capacity.items()
            if k.startswith((GPU_RESOURCE, MIG_RESOURCE_PREFIX)) and v.isdigit()
        )

    return NodeStatusExporter(
        settings.node_name,
        settings.output_dir,
        driver_check=lambda: validate_driver(settings, hardware),
        device_count=device_count,
    )
