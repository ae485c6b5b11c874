"""The pydantic v1 config model the device plugin used until issue 15 (commit 460671f), kept
as the oracle of tests/unit/deviceplugin/test_dp_config_parity.py: the plain parser in
``gpu_operator.deviceplugin.config_v1`` must accept, refuse and word errors exactly as this did.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from gpu_operator.errors import ConfigError

MigStrategy = Literal["none", "single", "mixed"]
DeviceListStrategy = Literal["envvar", "volume-mounts", "cdi-annotations", "cdi-cri"]
DeviceIdStrategy = Literal["uuid", "index"]
AllocationPolicy = Literal["distributed", "packed"]
DiscoveryStrategy = Literal["auto", "nvml", "tegra"]

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
RESOURCE_PREFIX = "nvidia.com"


def parse_duration(text: str) -> float:
    """A Go duration (``90s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 1m30s or 500ms")
    return sum(
        float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginFlags(_Strict):
    passDeviceSpecs: bool | None = None
    deviceListStrategy: list[DeviceListStrategy] | None = None
    deviceIDStrategy: DeviceIdStrategy | None = None
    cdiAnnotationPrefix: str | None = None
    nvidiaCTKPath: str | None = None
    containerDriverRoot: str | None = None
    sharedDevicesAllocationPolicy: AllocationPolicy | None = None

    @field_validator("deviceListStrategy", mode="before")
    @classmethod
    def _string_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class GfdFlags(_Strict):
    oneshot: bool | None = None
    noTimestamp: bool | None = None
    sleepInterval: str | float | None = None
    """A Go duration or ``infinite``; a number is nanoseconds, as upstream's ``Duration``
    reads it (``load_config`` turns it into ``<n>ns`` and says so)."""
    outputFile: str | None = None
    machineTypeFile: str | None = None

    @field_validator("sleepInterval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a duration like 60s (or a number of nanoseconds)")
        if isinstance(value, str) and value != "infinite":
            parse_duration(value)
        return value


class Flags(_Strict):
    migStrategy: MigStrategy | None = None
    failOnInitError: bool | None = None
    nvidiaDriverRoot: str | None = None
    nvidiaDevRoot: str | None = None
    mpsRoot: str | None = None
    gdrcopyEnabled: bool | None = None
    gdsEnabled: bool | None = None
    mofedEnabled: bool | None = None
    useNodeFeatureAPI: bool | None = None
    deviceDiscoveryStrategy: DiscoveryStrategy | None = None
    plugin: PluginFlags = PluginFlags()
    gfd: GfdFlags = GfdFlags()


class ResourcePattern(_Strict):
    """Devices whose model (full GPUs) or profile (MIG) matches ``pattern`` (``*`` wildcards)
    are advertised as ``nvidia.com/<name>``."""

    pattern: str
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        short = value.removeprefix(f"{RESOURCE_PREFIX}/")
        if not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", short):
            raise ValueError(f"{value!r} is not a valid resource name")
        if len(f"{RESOURCE_PREFIX}/{short}") > 63:
            raise ValueError(f"{value!r}: resource names are at most 63 characters")
        return short


class Resources(_Strict):
    gpus: list[ResourcePattern] = Field(default_factory=list)
    mig: list[ResourcePattern] = Field(default_factory=list)


class ReplicatedResource(_Strict):
    name: str
    replicas: int = Field(ge=2)
    rename: str | None = None
    devices: Literal["all"] | int | list[str | int] = "all"

    @field_validator("name")
    @classmethod
    def _qualified(cls, value: str) -> str:
        """Short names get the ``nvidia.com/`` prefix, as upstream does."""
        return value if "/" in value else f"{RESOURCE_PREFIX}/{value}"


class ReplicatedResources(_Strict):
    renameByDefault: bool = False
    failRequestsGreaterThanOne: bool | None = None
    resources: list[ReplicatedResource] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ReplicatedResources:
        names = [r.name for r in self.resources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"resource {duplicates[0]} is listed more than once")
        return self


class Sharing(_Strict):
    timeSlicing: ReplicatedResources | None = None
    mps: ReplicatedResources | None = None


class Imex(_Strict):
    channelIDs: list[int] = Field(default_factory=list)
    required: bool = False

    @field_validator("channelIDs")
    @classmethod
    def _channels(cls, value: list[int]) -> list[int]:
        if value not in ([], [0]):
            raise ValueError("only [] or [0] are valid channel ids")
        return value


class Health(_Strict):
    """Ours, not upstream's: return a device to Healthy once it has passed a fresh NVML check
    for ``recoveryQuietPeriod`` without a new critical XID."""

    recoveryQuietPeriod: str | None = None

    @field_validator("recoveryQuietPeriod")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class ConfigV1(_Strict):
    version: Literal["v1"] = "v1"
    flags: Flags = Flags()
    resources: Resources = Resources()
    sharing: Sharing = Sharing()
    imex: Imex = Imex()
    health: Health = Health()
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("version", mode="before")
    @classmethod
    def _empty_is_v1(cls, value: Any) -> Any:
        return "v1" if value in (None, "") else value

    @property
    def ignored(self) -> tuple[str, ...]:
        """One notice per setting upstream ignores and so do we (``file:line: key: ...``)."""
        return self._ignored


def _parse(text: str, loader_class: Any) -> tuple[Any, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def load_config(text: str, *, source: str = "<config>") -> ConfigV1:
    """Parse and validate a v1 config; ``ConfigError`` naming ``source``, line and key."""
    try:
        # As the module under test reads YAML (libyaml, the pure-Python parser for the wording
        # of a syntax error): the same text gives both the same data and lines.
        try:
            data, node = _parse(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            data, node = _parse(text, yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{source}{line}: not valid YAML or JSON: {problem}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config must be a mapping with 'version: v1'")
    try:
        config = ConfigV1.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = [p for p in first["loc"] if not isinstance(p, str) or not p.startswith("function")]
        path = _path_text(loc)
        line_number = _line_of(node, loc)
        where = f"{source}:{line_number}" if line_number else source
        raise ConfigError(f"{where}: {path or 'config'}: {_message(first)}") from error
    return _as_upstream(config, node, source)


def _qualified(name: str) -> str:
    return name if "/" in name else f"{RESOURCE_PREFIX}/{name}"


def _as_upstream(config: ConfigV1, node: Any, source: str) -> ConfigV1:
    """Upstream's ``DisableResourceNamingInConfig``: the ``resources`` section dropped, a
    sharing rule's ``rename`` cleared (under ``renameByDefault``: set to ``<name>.shared``)
    and its ``devices`` set to all; a notice for each, naming file:line."""
    notices: list[str] = []

    def at(*loc: str | int) -> str:
        line = _line_of(node, list(loc))
        return f"{source}:{line}" if line else source

    resources = config.resources
    if resources.gpus or resources.mig:
        notice = (
            f"{at('resources')}: resources: customizing resource names is not supported (as "
            "upstream's device plugin and GFD): the section is ignored, devices keep their "
            "default names"
        )
        merged = next(
            (
                (g, m, rule.name)
                for g, rule in enumerate(resources.gpus)
                for m, other in enumerate(resources.mig)
                if other.name == rule.name
            ),
            None,
        )
        if merged is not None:
            g, m, name = merged
            notice += (
                f"; note resources.gpus[{g}] ({at('resources', 'gpus', g)}) and "
                f"resources.mig[{m}] ({at('resources', 'mig', m)}) both name "
                f"{RESOURCE_PREFIX}/{name}, which would put whole GPUs and MIG devices in one "
                "resource"
            )
        notices.append(notice)
    sharing: dict[str, ReplicatedResources] = {}
    for kind in ("timeSlicing", "mps"):
        shared: ReplicatedResources | None = getattr(config.sharing, kind)
        if shared is None:
            continue
        rules = []
        for i, rule in enumerate(shared.resources):
            key = f"sharing.{kind}.resources[{i}]"
            default = f"{rule.name}.shared" if shared.renameByDefault else rule.name
            update: dict[str, Any] = {}
            if rule.rename is not None and _qualified(rule.rename) != default:
                notices.append(
                    f"{at('sharing', kind, 'resources', i, 'rename')}: {key}.rename: renaming "
                    "a shared resource is not supported (as upstream's device plugin): "
                    f"ignored, it is advertised as {default}"
                )
                update["rename"] = None
            if rule.devices != "all":
                notices.append(
                    f"{at('sharing', kind, 'resources', i, 'devices')}: {key}.devices: sharing "
                    "only some devices is not supported (as upstream's device plugin): "
                    "ignored, every device is shared"
                )
                update["devices"] = "all"
            rules.append(rule.model_copy(update=update) if update else rule)
        sharing[kind] = shared.model_copy(update={"resources": rules})
    flags = config.flags
    interval = flags.gfd.sleepInterval
    if isinstance(interval, int | float):
        nanoseconds = int(interval)  # Go: time.Duration(float64), truncated
        notices.append(
            f"{at('flags', 'gfd', 'sleepInterval')}: flags.gfd.sleepInterval: the number "
            f"{interval:g} is {nanoseconds}ns, as upstream reads a number (nanoseconds); "
            "write a duration such as '60s' to mean seconds"
        )
        gfd = flags.gfd.model_copy(update={"sleepInterval": f"{nanoseconds}ns"})
        flags = flags.model_copy(update={"gfd": gfd})
    if not notices:
        return config
    effective = config.model_copy(
        update={
            "flags": flags,
            "resources": Resources(),
            "sharing": config.sharing.model_copy(update=sharing),
        }
    )
    effective._ignored = tuple(notices)
    return effective


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling and where it is nested)"
    if error["type"] == "literal_error" and "input" in error:
        return f"{error['input']!r} is not allowed: {message.removeprefix('Input should be ')}"
    return message


def _path_text(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("list[str]", "list[union[str,int]]", "str", "int", "literal['all']"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(node: Any, loc: list[Any]) -> int | None:
    """The 1-based line of the key at ``loc`` in the composed YAML (the closest existing one)."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    if line is None and node is not None:
        return int(node.start_mark.line) + 1
    return line
