"""The v1 config parser without pydantic (issue 15) reads every config as the pydantic model
did: each key of each section, given each kind of value YAML can hold, is accepted with the
same value or refused with the same one line (file:line: key: message), compared with the
model kept as the oracle (``helpers/dp_config_oracle.py``, the module as of commit 460671f)."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

import pytest
import yaml

from gpu_operator.deviceplugin import config_v1
from gpu_operator.errors import ConfigError
from helpers import dp_config_oracle as oracle

pytestmark = pytest.mark.timeout(120)

BASE: dict[str, Any] = {
    "version": "v1",
    "flags": {
        "migStrategy": "mixed",
        "failOnInitError": True,
        "nvidiaDriverRoot": "/run/nvidia/driver",
        "nvidiaDevRoot": "/",
        "mpsRoot": "/run/nvidia/mps",
        "gdrcopyEnabled": False,
        "gdsEnabled": False,
        "mofedEnabled": False,
        "useNodeFeatureAPI": True,
        "deviceDiscoveryStrategy": "auto",
        "plugin": {
            "passDeviceSpecs": True,
            "deviceListStrategy": ["envvar"],
            "deviceIDStrategy": "uuid",
            "cdiAnnotationPrefix": "cdi.k8s.io/",
            "nvidiaCTKPath": "/usr/bin/nvidia-ctk",
            "containerDriverRoot": "/driver-root",
            "sharedDevicesAllocationPolicy": "packed",
        },
        "gfd": {
            "oneshot": False,
            "noTimestamp": False,
            "sleepInterval": "60s",
            "outputFile": "/etc/kubernetes/node-feature-discovery/features.d/gfd",
            "machineTypeFile": "/sys/class/dmi/id/product_name",
        },
    },
    "resources": {
        "gpus": [{"pattern": "A100*", "name": "a100"}],
        "mig": [{"pattern": "1g.5gb", "name": "small"}],
    },
    "sharing": {
        "timeSlicing": {
            "renameByDefault": False,
            "failRequestsGreaterThanOne": False,
            "resources": [{"name": "gpu", "replicas": 4, "rename": "gpu", "devices": "all"}],
        },
        "mps": {
            "renameByDefault": True,
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": 2}],
        },
    },
    "imex": {"channelIDs": [0], "required": False},
    "health": {"recoveryQuietPeriod": "60s"},
}

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    -1,
    0.0,
    1.0,
    0.5,
    2.0,
    2.5,
    float("inf"),
    float("nan"),
    2**70,
    "true",
    "YES",
    "On",
    " yes",
    "maybe",
    "",
    "3",
    "3.0",
    " 3 ",
    "+3",
    "-3",
    "1_0",
    "0x10",
    "3.5",
    "all",
    "All",
    "none",
    "single",
    "mixed",
    "uuid",
    "index",
    "envvar",
    "cdi-cri",
    "distributed",
    "packed",
    "auto",
    "nvml",
    "tegra",
    "v1",
    "v2",
    "60s",
    "1m30s",
    "500ms",
    "5x",
    "60",
    "infinite",
    "gpu",
    "nvidia.com/gpu",
    "nvidia.com/gpu.shared",
    "a b",
    "x" * 60,
    [],
    [0],
    ["0"],
    [1],
    [0, 0],
    ["envvar"],
    ["envvar", "cdi-cri"],
    ["envvar", "x"],
    ["a", 1],
    [1.5],
    [None],
    [{"a": 1}],
    {},
    {"a": 1},
    datetime.date(2024, 1, 1),
]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of BASE, sections and leaves alike."""
    out = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _leaves(value, (*path, key))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        out += _leaves(node[0], (*path, 0))
    return out


PATHS = _leaves(BASE)


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    trimmed: dict[str, Any] = {}
    node: Any = data
    out: Any = trimmed
    for part in path[:-1]:
        node = node[part]
        if isinstance(node, list):
            out[part] = [None]
        else:
            out[part] = {}
        out = out[part]
    node[path[-1]] = value
    _fill(trimmed, data, path[:-1])
    return trimmed


def _fill(trimmed: dict[str, Any], data: dict[str, Any], to: tuple[Any, ...]) -> None:
    """Put the whole section at ``to`` (from ``data``) into ``trimmed``'s skeleton."""
    if not to:
        trimmed.clear()
        trimmed.update(data)
        return
    holder: Any = trimmed
    source: Any = data
    for part in to[:-1]:
        holder, source = holder[part], source[part]
    holder[to[-1]] = source[to[-1]]


def _without(path: tuple[Any, ...]) -> dict[str, Any]:
    data = _with(path, None)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        config = parse(text, source="plugin.yaml")
    except ConfigError as error:
        return "error", str(error)
    except (ValueError, OverflowError) as error:  # the oracle on .inf nanoseconds
        return "crash", type(error).__name__
    plain = _plain(config)
    plain.pop("ignored", None)
    return "ok", (plain, list(config.ignored))


def assert_same(text: str) -> None:
    ours, theirs = outcome(config_v1.load_config, text), outcome(oracle.load_config, text)
    if theirs[0] == "crash":  # where pydantic let a value through that then crashed, one line
        assert ours[0] == "error", text
    else:
        assert ours == theirs, text


def dump(data: Any, sort_keys: bool = True) -> str:
    """YAML text for ``data`` (libyaml's emitter where PyYAML has it: ~2,000 configs here)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=sort_keys))


def test_the_base_config_reads_the_same() -> None:
    assert outcome(config_v1.load_config, dump(BASE))[0] == "ok"
    assert_same(dump(BASE))


PROBES: list[Any] = [None, True, 2, 2.5, "3", "maybe", "all", "60s", "gpu", [0], {}]
"""Values that tell every reader apart: each key gets these, the first key of each kind (the
same section, the same kind of value in BASE) gets all of VALUES."""


def _kind(path: tuple[Any, ...]) -> tuple[Any, ...]:
    node: Any = BASE
    for part in path:
        node = node[part]
    same = {"mps": "timeSlicing", "mig": "gpus"}  # sections of one type
    return (*(same.get(p, p) for p in path[:-1]), type(node).__name__)


FULL = {p for p in PATHS if p == next(q for q in PATHS if _kind(q) == _kind(p))} | {
    ("sharing", "timeSlicing", "resources", 0, "devices")
}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: ".".join(map(str, p)))
def test_every_key_given_any_value_reads_the_same(path: tuple[Any, ...]) -> None:
    for value in VALUES if path in FULL else PROBES:
        assert_same(dump(_with(path, value), sort_keys=False))


@pytest.mark.parametrize("path", PATHS, ids=lambda p: ".".join(map(str, p)))
def test_every_key_missing_or_beside_an_unknown_one_reads_the_same(
    path: tuple[Any, ...],
) -> None:
    assert_same(dump(_without(path), sort_keys=False))
    if not isinstance(path[-1], int):  # a list item's keys have their own paths
        assert_same(dump(_with((*path[:-1], "renameByDefalt"), True), sort_keys=False))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        "version: ''\n",
        "version:\n",
        "- a\n",
        "3\n",
        "flags: [1\n",
        "flags:\n  zzz: 1\n  migStrategy: bad\n",  # the known key's error comes first
        "flags:\n  plugin:\n    zzz: 1\n  migStrategy: bad\n",
        "sharing:\n  timeSlicing:\n    resources:\n    - {}\n",  # name before replicas
        "sharing:\n  timeSlicing:\n    resources:\n    - name: a\n      replicas: 2\n"
        "    - name: nvidia.com/a\n      replicas: 3\n",  # the same resource twice
        "sharing:\n  timeSlicing:\n    zzz: 1\n    resources:\n    - name: a\n      replicas: 2\n"
        "    - name: a\n      replicas: 2\n",  # an unknown key beats the duplicate check
        "flags:\n  gfd:\n    sleepInterval: 5\n",
        "flags:\n  gfd:\n    sleepInterval: 1.5e9\n",
        "resources:\n  gpus: [{pattern: '*', name: shared}]\n"
        "  mig: [{pattern: '*', name: shared}]\n",
        "sharing:\n  mps:\n    renameByDefault: true\n    resources:\n"
        "    - {name: gpu, replicas: 2, rename: other, devices: [0, GPU-1]}\n",
        "1: x\n",
        "version: v2\n1: x\n",
        "flags:\n  true: 1\n  migStrategy: bad\n",
        "flags:\n  plugin:\n    deviceListStrategy: volume-mounts\n",
    ],
)
def test_hand_picked_configs_read_the_same(text: str) -> None:
    assert_same(text)
