"""The device plugin's config file, ``version: v1`` (k8s-device-plugin ``api/config/v1``).

YAML or JSON text in, a validated ``ConfigV1`` out: ``load_config(text, source=path)``. Keys are
upstream's, spelled as upstream spells them; unknown keys are errors. Every error names the
source, the line and the key path (``config.yaml:7: sharing.timeSlicing.resources[0].replicas:
...``). Beyond upstream, and under our own name: the ``health`` section (opt-in recovery).

What ``load_config`` returns is the config as upstream's plugin and GFD use it: they parse the
``resources`` section and a sharing rule's ``rename`` and ``devices``, then drop them with a
warning (``DisableResourceNamingInConfig``), so a config that renamed nothing upstream renames
nothing here. Each dropped setting is a notice in ``ConfigV1.ignored`` naming file:line.

The sections are frozen dataclasses read by ``gpu_operator.deviceplugin.coerce`` with the rules
and messages of the pydantic model this was until issue 15: importing this module loads
neither pydantic nor YAML (YAML only once a file is parsed), which kept ~13 MiB off the
resident size of the device plugin and feature discovery.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from gpu_operator.deviceplugin.coerce import (
    REQUIRED,
    Invalid,
    Key,
    at_least,
    before,
    boolean,
    checked,
    integer,
    list_of,
    mapped,
    one_of,
    optional,
    section,
    string,
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


@dataclass(frozen=True)
class PluginFlags:
    passDeviceSpecs: bool | None = None
    deviceListStrategy: list[DeviceListStrategy] | None = None
    deviceIDStrategy: DeviceIdStrategy | None = None
    cdiAnnotationPrefix: str | None = None
    nvidiaCTKPath: str | None = None
    containerDriverRoot: str | None = None
    sharedDevicesAllocationPolicy: AllocationPolicy | None = None


@dataclass(frozen=True)
class GfdFlags:
    oneshot: bool | None = None
    noTimestamp: bool | None = None
    sleepInterval: str | float | None = None
    """A Go duration or ``infinite``; a number is nanoseconds, as upstream's ``Duration``
    reads it (``load_config`` turns it into ``<n>ns`` and says so)."""
    outputFile: str | None = None
    machineTypeFile: str | None = None


@dataclass(frozen=True)
class Flags:
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
    plugin: PluginFlags = field(default_factory=PluginFlags)
    gfd: GfdFlags = field(default_factory=GfdFlags)


@dataclass(frozen=True)
class ResourcePattern:
    """Devices whose model (full GPUs) or profile (MIG) matches ``pattern`` (``*`` wildcards)
    are advertised as ``nvidia.com/<name>``."""

    pattern: str
    name: str


@dataclass(frozen=True)
class Resources:
    gpus: list[ResourcePattern] = field(default_factory=list)
    mig: list[ResourcePattern] = field(default_factory=list)


@dataclass(frozen=True)
class ReplicatedResource:
    name: str
    replicas: int
    rename: str | None = None
    devices: Literal["all"] | int | list[str | int] = "all"


@dataclass(frozen=True)
class ReplicatedResources:
    resources: list[ReplicatedResource]
    renameByDefault: bool = False
    failRequestsGreaterThanOne: bool | None = None


@dataclass(frozen=True)
class Sharing:
    timeSlicing: ReplicatedResources | None = None
    mps: ReplicatedResources | None = None


@dataclass(frozen=True)
class Imex:
    channelIDs: list[int] = field(default_factory=list)
    required: bool = False


@dataclass(frozen=True)
class Health:
    """Ours, not upstream's: return a device to Healthy once it has passed a fresh NVML check
    for ``recoveryQuietPeriod`` without a new critical XID."""

    recoveryQuietPeriod: str | None = None


@dataclass(frozen=True)
class ConfigV1:
    version: Literal["v1"] = "v1"
    flags: Flags = field(default_factory=Flags)
    resources: Resources = field(default_factory=Resources)
    sharing: Sharing = field(default_factory=Sharing)
    imex: Imex = field(default_factory=Imex)
    health: Health = field(default_factory=Health)
    ignored: tuple[str, ...] = ()
    """One notice per setting upstream ignores and so do we (``file:line: key: ...``)."""


# How each section is read: its keys in order, with pydantic's lax rules (``coerce``).


def _literal(kind: Any) -> Any:
    return one_of(get_args(kind))


def _resource_name(value: str) -> str:
    short = value.removeprefix(f"{RESOURCE_PREFIX}/")
    if not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", short):
        raise ValueError(f"{value!r} is not a valid resource name")
    if len(f"{RESOURCE_PREFIX}/{short}") > 63:
        raise ValueError(f"{value!r}: resource names are at most 63 characters")
    return short


def _qualified_name(value: str) -> str:
    """Short names get the ``nvidia.com/`` prefix, as upstream does."""
    return value if "/" in value else f"{RESOURCE_PREFIX}/{value}"


def _list_strategy(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _sleep_interval(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration like 60s (or a number of nanoseconds)")
    if isinstance(value, str) and value != "infinite":
        parse_duration(value)
    return value


def _text_or_number(value: Any, loc: Any) -> str | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):  # pydantic took it, and the plugin then crashed on it
            raise Invalid(loc, f"{value!r} is not a duration like 60s (or a number of nanoseconds)")
        return float(value)
    return string(value, loc)


def _device_item(value: Any, loc: Any) -> str | int:
    if isinstance(value, str):
        return value
    return integer(value, loc)


def _devices(value: Any, loc: Any) -> str | int | list[str | int]:
    """``all``, a count, or a list of indexes and UUIDs; pydantic named the first choice."""
    if value == "all" and isinstance(value, str):
        return "all"
    for choice in (integer, list_of(_device_item)):
        try:
            out: int | list[str | int] = choice(value, loc)
        except Invalid:
            continue
        return out
    raise Invalid(loc, f"{value!r} is not allowed: 'all'")


def _unique_names(shared: ReplicatedResources) -> None:
    names = [r.name for r in shared.resources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"resource {duplicates[0]} is listed more than once")


def _channels(value: list[int]) -> None:
    if value not in ([], [0]):
        raise ValueError("only [] or [0] are valid channel ids")


def _duration_text(value: str | None) -> None:
    if value is not None:
        parse_duration(value)


_BOOL = optional(boolean)
_STR = optional(string)
_plugin_flags = section(
    PluginFlags,
    [
        Key("passDeviceSpecs", _BOOL),
        Key(
            "deviceListStrategy",
            before(_list_strategy, optional(list_of(_literal(DeviceListStrategy)))),
        ),
        Key("deviceIDStrategy", optional(_literal(DeviceIdStrategy))),
        Key("cdiAnnotationPrefix", _STR),
        Key("nvidiaCTKPath", _STR),
        Key("containerDriverRoot", _STR),
        Key("sharedDevicesAllocationPolicy", optional(_literal(AllocationPolicy))),
    ],
)
_gfd_flags = section(
    GfdFlags,
    [
        Key("oneshot", _BOOL),
        Key("noTimestamp", _BOOL),
        Key("sleepInterval", before(_sleep_interval, optional(_text_or_number))),
        Key("outputFile", _STR),
        Key("machineTypeFile", _STR),
    ],
)
_flags = section(
    Flags,
    [
        Key("migStrategy", optional(_literal(MigStrategy))),
        Key("failOnInitError", _BOOL),
        Key("nvidiaDriverRoot", _STR),
        Key("nvidiaDevRoot", _STR),
        Key("mpsRoot", _STR),
        Key("gdrcopyEnabled", _BOOL),
        Key("gdsEnabled", _BOOL),
        Key("mofedEnabled", _BOOL),
        Key("useNodeFeatureAPI", _BOOL),
        Key("deviceDiscoveryStrategy", optional(_literal(DiscoveryStrategy))),
        Key("plugin", _plugin_flags, PluginFlags),
        Key("gfd", _gfd_flags, GfdFlags),
    ],
)
_pattern = section(
    ResourcePattern,
    [Key("pattern", string, REQUIRED), Key("name", mapped(string, _resource_name), REQUIRED)],
)
_resources = section(
    Resources, [Key("gpus", list_of(_pattern), list), Key("mig", list_of(_pattern), list)]
)
_replicated = section(
    ReplicatedResource,
    [
        Key("name", mapped(string, _qualified_name), REQUIRED),
        Key("replicas", at_least(2), REQUIRED),
        Key("rename", _STR),
        Key("devices", _devices, "all"),
    ],
)
_shared = section(
    ReplicatedResources,
    [
        Key("renameByDefault", boolean, False),
        Key("failRequestsGreaterThanOne", _BOOL),
        Key("resources", list_of(_replicated, min_length=1), REQUIRED),
    ],
    check=_unique_names,
)
_sharing = section(Sharing, [Key("timeSlicing", optional(_shared)), Key("mps", optional(_shared))])
_imex = section(
    Imex,
    [
        Key("channelIDs", checked(list_of(integer), _channels), list),
        Key("required", boolean, False),
    ],
)
_health = section(Health, [Key("recoveryQuietPeriod", checked(_STR, _duration_text))])
_config = section(
    ConfigV1,
    [
        Key("version", before(lambda v: "v1" if v in (None, "") else v, one_of(("v1",))), "v1"),
        Key("flags", _flags, Flags),
        Key("resources", _resources, Resources),
        Key("sharing", _sharing, Sharing),
        Key("imex", _imex, Imex),
        Key("health", _health, Health),
    ],
)


def load_config(text: str, *, source: str = "<config>") -> ConfigV1:
    """Parse and validate a v1 config; ``ConfigError`` naming ``source``, line and key."""
    import yaml  # here: settings without a config file don't load YAML

    try:
        try:  # one parse, with libyaml where PyYAML has it (about 10x faster)
            data, node = _parse(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:  # the pure-Python parser words a syntax error as it always has
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
        config = _config(data, ())
    except Invalid as error:
        loc = list(error.loc)
        line_number = _line_of(node, loc)
        where = f"{source}:{line_number}" if line_number else source
        raise ConfigError(f"{where}: {_path_text(loc) or 'config'}: {error.message}") from None
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
            rules.append(replace(rule, **update) if update else rule)
        sharing[kind] = replace(shared, resources=rules)
    flags = config.flags
    interval = flags.gfd.sleepInterval
    if isinstance(interval, int | float):
        nanoseconds = int(interval)  # Go: time.Duration(float64), truncated
        notices.append(
            f"{at('flags', 'gfd', 'sleepInterval')}: flags.gfd.sleepInterval: the number "
            f"{interval:g} is {nanoseconds}ns, as upstream reads a number (nanoseconds); "
            "write a duration such as '60s' to mean seconds"
        )
        gfd = replace(flags.gfd, sleepInterval=f"{nanoseconds}ns")
        flags = replace(flags, gfd=gfd)
    if not notices:
        return config
    return replace(
        config,
        flags=flags,
        resources=Resources(),
        sharing=replace(config.sharing, **sharing),
        ignored=tuple(notices),
    )


def _path_text(loc: list[Any]) -> str:
    """``sharing.timeSlicing.resources[0].replicas``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _parse(text: str, loader_class: Any) -> tuple[Any, Any]:
    """The YAML node tree (for lines) and the data built from it, from one parse."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _line_of(node: Any, loc: list[Any]) -> int | None:
    """The 1-based line of the key at ``loc`` in the composed YAML (the closest existing one)."""
    import yaml

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
