"""mig-parted's config file, version ``v1`` (``api/spec/v1``), with exactly its validation.

    version: v1
    mig-configs:
      <name>:
        - device-filter: "0x20B010DE"      # optional; string or list; 0xDDDDVVVV[:0xSSSSVVVV]
          devices: all                     # "all" or a list of GPU indexes
          mig-enabled: true
          mig-devices: {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}

Parse with ``load_spec(text, source=...)``; every error reads ``file:line: key.path: problem``
and names the config, the entry index and the key. No I/O here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInfo
from gpu_operator.mig.profiles import parse_profile, sort_key
from gpu_operator.mig.sourcemap import config_error, load_yaml

_FILTER = re.compile(r"0x([0-9a-fA-F]{8})(?::0x([0-9a-fA-F]{8}))?")


@dataclass(frozen=True)
class DeviceFilter:
    """``0xDDDDVVVV`` (device + vendor) and optionally ``:0xSSSSVVVV`` (subsystem)."""

    device: int
    subsystem: int | None = None

    @classmethod
    def parse(cls, text: str) -> DeviceFilter:
        match = _FILTER.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"device filter {text!r} must be 0xDDDDVVVV or 0xDDDDVVVV:0xSSSSVVVV "
                f"(PCI device and vendor id, optionally the subsystem id)"
            )
        sub = match.group(2)
        return cls(int(match.group(1), 16), int(sub, 16) if sub else None)

    def matches(self, gpu: GpuInfo) -> bool:
        if gpu.pci_device_id != self.device:
            return False
        return self.subsystem is None or gpu.pci_subsystem_id == self.subsystem

    def __str__(self) -> str:
        sub = f":0x{self.subsystem:08X}" if self.subsystem is not None else ""
        return f"0x{self.device:08X}{sub}"


def _profile_key(value: str) -> str:
    try:
        parse_profile(value)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    return value


ProfileKey = Annotated[str, AfterValidator(_profile_key)]
Count = Annotated[int, Strict(), Field(ge=0)]


class MigConfigEntry(BaseModel):
    """One entry of a named config: which GPUs, MIG on or off, and which MIG devices."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    device_filter: str | list[str] | None = Field(default=None, alias="device-filter")
    devices: Literal["all"] | list[int]
    mig_enabled: bool = Field(alias="mig-enabled")
    mig_devices: dict[ProfileKey, Count] | None = Field(default=None, alias="mig-devices")

    @field_validator("device_filter", mode="before")
    @classmethod
    def _filters(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("must be a string or a list of strings")
        if not items:
            raise ValueError("must list at least one device id")
        for item in items:
            DeviceFilter.parse(item)
        return value

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, value: Any) -> Any:
        if value == "all":
            return value
        ok = isinstance(value, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value
        )
        if not ok:
            raise ValueError(f"must be 'all' or a list of GPU indexes, got {value!r}")
        return value

    @field_validator("mig_enabled", mode="before")
    @classmethod
    def _enabled(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value

    @field_validator("mig_devices", mode="after")
    @classmethod
    def _not_all_zero(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value and not any(value.values()):
            raise ValueError("all counts are zero; use {} for MIG enabled without devices")
        return value

    @model_validator(mode="after")
    def _devices_only_when_enabled(self) -> MigConfigEntry:
        if not self.mig_enabled and self.mig_devices:
            raise ValueError("mig-devices must be absent or empty when mig-enabled is false")
        if self.mig_enabled and self.mig_devices is None:
            raise ValueError("mig-devices is required when mig-enabled is true ({} for none)")
        return self

    @property
    def filters(self) -> list[DeviceFilter]:
        if self.device_filter is None:
            return []
        items = [self.device_filter] if isinstance(self.device_filter, str) else self.device_filter
        return [DeviceFilter.parse(i) for i in items]

    def matches(self, gpu: GpuInfo) -> bool:
        """The entry applies to this GPU: its filter matches (or there is none) and ``devices``
        is ``all`` or lists the GPU's index."""
        filters = self.filters
        if filters and not any(f.matches(gpu) for f in filters):
            return False
        return self.devices == "all" or gpu.index in self.devices

    def wanted(self) -> dict[str, int]:
        """The MIG devices this entry asks for, zero counts dropped, largest first."""
        items = (self.mig_devices or {}).items()
        return {
            str(parse_profile(k)): v for k, v in sorted(items, key=lambda kv: sort_key(kv[0])) if v
        }


class Spec(BaseModel):
    """A whole v1 config file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: Literal["v1"]
    mig_configs: dict[str, Annotated[list[MigConfigEntry], Field(min_length=1)]] = Field(
        alias="mig-configs", min_length=1
    )

    def select(self, name: str | None, *, source: str = "config") -> list[MigConfigEntry]:
        """The entries of config ``name``; without a name, the file's only config."""
        if name is None or name == "":
            if len(self.mig_configs) == 1:
                return next(iter(self.mig_configs.values()))
            raise ConfigError(
                f"{source}: it holds {len(self.mig_configs)} configs; select one with -c "
                f"({', '.join(self.mig_configs)})"
            )
        if name not in self.mig_configs:
            raise ConfigError(
                f"{source}: no config named {name!r} (it has {', '.join(self.mig_configs)})"
            )
        return self.mig_configs[name]


def load_spec(text: str, source: str = "<config>") -> Spec:
    """Parse and validate a v1 config; ``ConfigError`` lines read ``source:line: path: problem``."""
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config must be a mapping with version and mig-configs")
    try:
        return Spec.model_validate(data)
    except ValidationError as error:
        raise config_error(error, source, lines) from error


def spec_data(spec: Spec) -> dict[str, Any]:
    """The spec as plain data with upstream key names, leaving out absent optional keys."""
    data: dict[str, Any] = spec.model_dump(by_alias=True, exclude_none=True)
    return data


def dump_spec(spec: Spec, output_format: str = "yaml") -> str:
    """YAML (block style, keys in upstream order) or JSON, as mig-parted's export prints."""
    data = spec_data(spec)
    if output_format == "json":
        return json.dumps(data, indent=2) + "\n"
    if output_format != "yaml":
        raise ConfigError(f"output format must be yaml or json, got {output_format!r}")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
