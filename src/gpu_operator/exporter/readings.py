"""One sample of one monitored entity (a GPU, or a GPU instance of a MIG GPU): plain data the
field table reads from."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_operator.gpu.records import Telemetry


@dataclass(frozen=True)
class Entity:
    """Who a series is about; the first labels of every series, in upstream order."""

    gpu: int
    uuid: str
    pci_bus_id: str
    model_name: str
    gi_profile: str | None = None
    gi_id: int | None = None

    @property
    def device(self) -> str:
        return f"nvidia{self.gpu}"

    @property
    def pod_key(self) -> str:
        """How PodResources device ids map onto this entity: ``<gpu>-<GI id>`` for a GPU
        instance, the UUID for a whole GPU (dcgm-exporter's ``GetIDOfType``)."""
        return self.uuid if self.gi_id is None else f"{self.gpu}-{self.gi_id}"


@dataclass(frozen=True)
class Reading:
    entity: Entity
    t: Telemetry
    """Device-wide counters (the parent GPU's for a GPU instance)."""
    memory: Telemetry
    """Framebuffer counters of this entity (own for a GPU instance)."""
    gpm: dict[int, float] = field(default_factory=dict)
    energy_mj: int | None = None
    last_xid: int | None = None
    nvlink_rate: int | None = None
    driver_version: str | None = None
    nvml_version: str | None = None
    brand: str | None = None
    serial: str | None = None
    vbios: str | None = None

    def ecc(self, name: str) -> int | None:
        if self.t.ecc is None:
            return None
        value: int | None = getattr(self.t.ecc, name)
        return value
