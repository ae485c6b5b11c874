"""The exporter's settings: dcgm-exporter's flags and environment variables, one frozen object."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gpu_operator.errors import ConfigError
from gpu_operator.podresources import SOCKET as POD_RESOURCES_SOCKET


@dataclass(frozen=True)
class DeviceSelection:
    """``-d/--devices`` (``DCGM_EXPORTER_DEVICES_STR``): ``f`` flex (a MIG GPU as its GPU
    instances, otherwise the GPU), ``g[:ids]`` whole GPUs, ``i[:ids]`` GPU instances."""

    mode: str = "f"
    ids: frozenset[int] | None = None

    @classmethod
    def parse(cls, text: str) -> DeviceSelection:
        match = re.fullmatch(r"([fgi])(?::(\d+(?:[,-]\d+)*))?", text.strip())
        if not match:
            raise ConfigError(
                f"--devices {text!r}: expected f, g[:ids] or i[:ids] (ids like 0,1 or 0-3)"
            )
        mode, spec = match.group(1), match.group(2)
        if mode == "f" and spec:
            raise ConfigError(f"--devices {text!r}: flex mode takes no ids")
        ids: set[int] = set()
        for part in (spec or "").split(","):
            if not part:
                continue
            if "-" in part:
                low, high = (int(x) for x in part.split("-"))
                if low > high:
                    raise ConfigError(f"--devices {text!r}: range {part} runs backwards")
                ids.update(range(low, high + 1))
            else:
                ids.add(int(part))
        return cls(mode, frozenset(ids) if ids else None)

    def wants_gpu(self, index: int) -> bool:
        return self.mode != "g" or self.ids is None or index in self.ids

    def wants_instance(self, gi_id: int) -> bool:
        return self.mode != "i" or self.ids is None or gi_id in self.ids


@dataclass(frozen=True)
class ExporterSettings:
    address: str = ":9400"
    """``-a/--address`` (``DCGM_EXPORTER_LISTEN``): where ``/metrics`` is served."""
    collect_interval_ms: int = 30000
    """``-c/--collect-interval`` (``DCGM_EXPORTER_INTERVAL``): sampling period in ms."""
    collectors: Path | None = None
    """``-f/--collectors`` (``DCGM_EXPORTER_COLLECTORS``); None = the shipped default file."""
    kubernetes: bool = False
    """``-k/--kubernetes`` (``DCGM_EXPORTER_KUBERNETES``): add pod labels from PodResources."""
    kubernetes_gpu_id_type: str = "uid"
    """``--kubernetes-gpu-id-type``: ``uid`` (device plugin UUIDs) or ``device-name``."""
    pod_resources_socket: Path = Path(POD_RESOURCES_SOCKET)
    """``--pod-resources-kubelet-socket`` (``DCGM_POD_RESOURCES_KUBELET_SOCKET``)."""
    pod_refresh_s: float = 10.0
    """How often pod attribution is refreshed (ours; upstream looks up on every scrape)."""
    nvidia_resource_names: tuple[str, ...] = ()
    """``--nvidia-resource-names`` (``NVIDIA_RESOURCE_NAMES``): more resources to attribute."""
    no_hostname: bool = False
    """``-n/--no-hostname``: drop the ``Hostname`` label."""
    hostname: str = ""
    """``NODE_NAME``, else the machine's hostname."""
    devices: DeviceSelection = field(default_factory=DeviceSelection)
    xid_window_ms: int = 300000
    """``-x/--xid-count-window-size``: window of ``DCGM_EXP_XID_ERRORS_COUNT``."""
    clock_events_window_ms: int = 300000
    """``--clock-events-count-window-size``."""
    replace_blanks_in_model_name: bool = False
    """``--replace-blanks-in-model-name``: ``NVIDIA H200`` → ``NVIDIA-H200``."""
    energy_interval_ms: int = 30000
    """How often the slow energy counter is read (ours: ~4 ms per call on an H200)."""
    kubernetes_enable_pod_labels: bool = False
    """``--kubernetes-enable-pod-labels``: the pod's labels on its series (an API lookup)."""
    kubernetes_enable_pod_uid: bool = False
    """``--kubernetes-enable-pod-uid``: ``pod_uid`` on the pod's series (an API lookup)."""
    kubernetes_pod_label_allowlist_regex: tuple[str, ...] = ()
    """``--kubernetes-pod-label-allowlist-regex``: only pod labels some pattern matches."""
    use_old_namespace: bool = False
    """``-o/--use-old-namespace``: dcgm-exporter 1.x label names (``uuid``, ``pod_name``,
    ``pod_namespace``, ``container_name``)."""

    def __post_init__(self) -> None:
        if self.collect_interval_ms < 100:
            raise ConfigError(f"--collect-interval {self.collect_interval_ms}: at least 100 ms")
        if self.kubernetes_gpu_id_type not in ("uid", "device-name"):
            raise ConfigError(
                f"--kubernetes-gpu-id-type {self.kubernetes_gpu_id_type!r}: uid or device-name"
            )
        self.listen()
        self.label_allowlist()

    def label_allowlist(self) -> tuple[re.Pattern[str], ...]:
        out = []
        for pattern in self.kubernetes_pod_label_allowlist_regex:
            try:
                out.append(re.compile(pattern))
            except re.error as error:
                raise ConfigError(
                    f"--kubernetes-pod-label-allowlist-regex {pattern!r}: {error}"
                ) from error
        return tuple(out)

    def listen(self) -> tuple[str, int]:
        """``:9400`` → ("", 9400); ``127.0.0.1:0`` → ("127.0.0.1", 0)."""
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"--address {self.address!r}: expected [HOST]:PORT")
        return host.strip("[]"), int(port)
