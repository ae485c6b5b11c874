"""State ``state-dcgm-exporter``: DaemonSet ``nvidia-dcgm-exporter`` (``dcgm-exporter`` on
:9400 with the DCGM_EXPORTER_* env contract), Service ``nvidia-dcgm-exporter`` (port name
``gpu-metrics``) and, when enabled, its ServiceMonitor."""

from __future__ import annotations

from gpu_operator.names import POD_RESOURCES_DIR
from gpu_operator.operator.policy_v1 import enabled
from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    PART_OF,
    Obj,
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    finish,
    host_volume,
    service,
    validations_volume,
    wait_for,
)

NAME = "nvidia-dcgm-exporter"
CSV_PATH = "/etc/dcgm-exporter/dcgm-metrics.csv"


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    section = spec.dcgmExporter
    env: list[Obj] = [
        {"name": "DCGM_EXPORTER_LISTEN", "value": ":9400"},
        {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
        NODE_NAME_ENV,
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
    ]
    mounts: list[Obj] = [
        {
            "name": "pod-gpu-resources",
            "mountPath": POD_RESOURCES_DIR,
            "readOnly": True,
        }
    ]
    volumes: list[Obj] = [
        validations_volume(),
        host_volume("pod-gpu-resources", f"{spec.hostPaths.kubeletRootDir}/pod-resources"),
    ]
    if section.config and section.config.name:
        env.append({"name": "DCGM_EXPORTER_COLLECTORS", "value": CSV_PATH})
        mounts.append(
            {
                "name": "metrics-config",
                "mountPath": CSV_PATH,
                "subPath": "dcgm-metrics.csv",
                "readOnly": True,
            }
        )
        volumes.append({"name": "metrics-config", "configMap": {"name": section.config.name}})
    # dcgm-exporter's own env names of --kubernetes-enable-pod-labels/-pod-uid/-pod-label-
    # allowlist-regex, as upstream's operator sets them.
    if section.enablePodLabels:
        env.append({"name": "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS", "value": "true"})
    if section.enablePodUID:
        env.append({"name": "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID", "value": "true"})
    if section.podLabelAllowlistRegex:
        env.append(
            {
                "name": "DCGM_EXPORTER_KUBERNETES_POD_LABEL_ALLOWLIST_REGEX",
                "value": ",".join(section.podLabelAllowlistRegex),
            }
        )
    if enabled(spec, "dcgm"):
        env.append(
            {"name": "DCGM_REMOTE_HOSTENGINE_INFO", "value": f"nvidia-dcgm:{spec.dcgm.hostPort}"}
        )
    main = container(
        ctx,
        section,
        "dcgmExporter",
        "nvidia-dcgm-exporter",
        command=["dcgm-exporter"],
        env=env,
        mounts=mounts,
        privileged=False,
        extra={
            "ports": [{"name": "metrics", "containerPort": 9400}],
            "securityContext": {"privileged": True},
        },
    )
    pod: Obj = {"hostPID": True} if section.hostPID else {}
    objects: list[Obj] = [
        daemonset(
            ctx,
            NAME,
            containers=[main],
            init_containers=[wait_for(ctx, "toolkit-validation", "toolkit-ready")],
            volumes=volumes,
            node_selector=deploy_selector("dcgm-exporter"),
            service_account="nvidia-dcgm-exporter",
            sections=[section],
            runtime_class=True,
            pod=pod,
        )
    ]
    svc = section.service
    exported = service(
        ctx,
        NAME,
        NAME,
        [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400, "protocol": "TCP"}],
        type=svc.type if svc else None,
        internalTrafficPolicy=svc.internalTrafficPolicy if svc else None,
    )
    if section.annotations:
        exported["metadata"]["annotations"] = {
            **section.annotations,
            **exported["metadata"]["annotations"],
        }
        exported = finish(ctx, exported)
    objects.append(exported)
    monitor = section.serviceMonitor
    if monitor and monitor.enabled:
        endpoint: Obj = {"port": "gpu-metrics", "path": "/metrics"}
        for key in ("interval", "scrapeTimeout", "honorLabels", "relabelings"):
            value = getattr(monitor, key)
            if value is not None:
                endpoint[key] = value
        objects.append(
            finish(
                ctx,
                {
                    "apiVersion": "monitoring.coreos.com/v1",
                    "kind": "ServiceMonitor",
                    "metadata": {
                        "name": NAME,
                        "labels": {
                            "app": NAME,
                            PART_OF: "gpu-operator",
                            **(monitor.additionalLabels or {}),
                        },
                    },
                    "spec": {"selector": {"matchLabels": {"app": NAME}}, "endpoints": [endpoint]},
                },
            )
        )
    return Rendered(tuple(objects))
