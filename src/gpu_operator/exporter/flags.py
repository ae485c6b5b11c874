"""dcgm-exporter's command line (``pkg/cmd/app.go``, urfave/cli), every flag of it, parsed as
Go's flag package parses it: ``-name``/``--name``, ``=value`` or the next argument, a bare
boolean is true and ``--name=false`` (Go's ``strconv.ParseBool`` words) false; a flag beats its
environment variable, which beats the default.

Each flag is acted on here, or accepted and reported (``unused``: why this exporter has no use
for it, e.g. ``-r`` names a DCGM hostengine and this exporter reads NVML directly). ``parse``
is pure: argument list and environment in, values and the unused flags given out; anything
unknown or malformed is a ``ConfigError`` naming the flag or variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gpu_operator.booleans import parse_bool
from gpu_operator.errors import ConfigError
from gpu_operator.names import POD_RESOURCES_SOCKET

Kind = Literal["bool", "string", "int", "slice"]

NO_DCGM = "no DCGM here: NVML is read directly"
NO_API = "needs the Kubernetes API; pod, namespace and container come from the kubelet"


@dataclass(frozen=True)
class Flag:
    name: str
    """The long name, without dashes (``collect-interval``)."""
    kind: Kind
    default: str
    env: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    unused: str | None = None
    """Why this exporter does not act on the flag; ``None``: it does."""


FLAGS: tuple[Flag, ...] = (
    # acted on
    Flag("collectors", "string", "", ("DCGM_EXPORTER_COLLECTORS",), ("f",)),
    Flag("address", "string", ":9400", ("DCGM_EXPORTER_LISTEN",), ("a",)),
    Flag("collect-interval", "int", "30000", ("DCGM_EXPORTER_INTERVAL",), ("c",)),
    Flag("kubernetes", "bool", "false", ("DCGM_EXPORTER_KUBERNETES",), ("k",)),
    Flag("use-old-namespace", "bool", "false", ("DCGM_EXPORTER_USE_OLD_NAMESPACE",), ("o",)),
    Flag("kubernetes-gpu-id-type", "string", "uid", ("DCGM_EXPORTER_KUBERNETES_GPU_ID_TYPE",)),
    Flag("devices", "string", "f", ("DCGM_EXPORTER_DEVICES_STR",), ("d",)),
    Flag("no-hostname", "bool", "false", ("DCGM_EXPORTER_NO_HOSTNAME",), ("n",)),
    Flag("web-config-file", "string", "", ("DCGM_EXPORTER_WEB_CONFIG_FILE",)),
    Flag(
        "xid-count-window-size", "int", "300000", ("DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE",), ("x",)
    ),
    Flag(
        "replace-blanks-in-model-name",
        "bool",
        "false",
        ("DCGM_EXPORTER_REPLACE_BLANKS_IN_MODEL_NAME",),
        ("rbmn",),
    ),
    Flag("debug", "bool", "false", ("DCGM_EXPORTER_DEBUG",)),
    Flag(
        "clock-events-count-window-size",
        "int",
        "300000",
        ("DCGM_EXPORTER_CLOCK_EVENTS_COUNT_WINDOW_SIZE",),
    ),
    Flag("log-format", "string", "text", ("DCGM_EXPORTER_LOG_FORMAT",)),
    Flag(
        "pod-resources-kubelet-socket",
        "string",
        POD_RESOURCES_SOCKET,
        ("DCGM_POD_RESOURCES_KUBELET_SOCKET",),
    ),
    Flag("nvidia-resource-names", "slice", "", ("NVIDIA_RESOURCE_NAMES",)),
    # ours
    Flag("energy-interval", "int", "30000", ("GPU_OPERATOR_EXPORTER_ENERGY_INTERVAL",)),
    # accepted, not used
    Flag(
        "configmap-data",
        "string",
        "none",
        ("DCGM_EXPORTER_CONFIGMAP_DATA",),
        ("m",),
        "counters come from -f; mount the ConfigMap as that file",
    ),
    Flag(
        "remote-hostengine-info",
        "string",
        "localhost:5555",
        ("DCGM_REMOTE_HOSTENGINE_INFO",),
        ("r",),
        NO_DCGM,
    ),
    Flag(
        "cpu-devices", "string", "f", ("DCGM_EXPORTER_CPU_DEVICES_STR",), ("p",), "no CPU metrics"
    ),
    Flag(
        "switch-devices",
        "string",
        "f",
        ("DCGM_EXPORTER_OTHER_DEVICES_STR",),
        ("s",),
        "no NVSwitch metrics",
    ),
    Flag("fake-gpus", "bool", "false", ("DCGM_EXPORTER_USE_FAKE_GPUS",), (), "use --sim"),
    Flag("enable-dcgm-log", "bool", "false", ("DCGM_EXPORTER_ENABLE_DCGM_LOG",), (), NO_DCGM),
    Flag("dcgm-log-level", "string", "NONE", ("DCGM_EXPORTER_DCGM_LOG_LEVEL",), (), NO_DCGM),
    Flag(
        "hpc-job-mapping-dir", "string", "", ("DCGM_HPC_JOB_MAPPING_DIR",), (), "no hpc_job label"
    ),
    Flag(
        "kubernetes-virtual-gpus",
        "bool",
        "false",
        ("KUBERNETES_VIRTUAL_GPUS",),
        (),
        "a shared GPU's series name one of its pods, not one series per pod",
    ),
    Flag(
        "kubernetes-enable-pod-labels",
        "bool",
        "false",
        ("DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS",),
        (),
        None,
    ),
    Flag(
        "kubernetes-enable-pod-uid",
        "bool",
        "false",
        ("DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID",),
        (),
        None,
    ),
    Flag(
        "kubernetes-pod-label-allowlist-regex",
        "slice",
        "",
        ("DCGM_EXPORTER_KUBERNETES_POD_LABEL_ALLOWLIST_REGEX",),
        (),
        None,
    ),
    Flag("kubernetes-enable-dra", "bool", "false", ("KUBERNETES_ENABLE_DRA",), (), NO_API),
    Flag(
        "container-labels",
        "bool",
        "false",
        ("DCGM_EXPORTER_CONTAINER_LABELS",),
        (),
        "no container runtime labels",
    ),
    Flag(
        "container-runtime-socket",
        "string",
        "",
        ("DCGM_CONTAINER_RUNTIME_SOCKET",),
        (),
        "no container runtime labels",
    ),
    Flag("dump-enabled", "bool", "false", ("DCGM_EXPORTER_DUMP_ENABLED",), (), "no debug dumps"),
    Flag(
        "dump-directory",
        "string",
        "/tmp/dcgm-exporter-debug",
        ("DCGM_EXPORTER_DUMP_DIRECTORY",),
        (),
        "no debug dumps",
    ),
    Flag("dump-retention", "int", "24", ("DCGM_EXPORTER_DUMP_RETENTION",), (), "no debug dumps"),
    Flag(
        "dump-compression",
        "bool",
        "true",
        ("DCGM_EXPORTER_DUMP_COMPRESSION",),
        (),
        "no debug dumps",
    ),
    Flag(
        "disable-startup-validate",
        "bool",
        "false",
        ("DISABLE_STARTUP_VALIDATE",),
        (),
        "nothing to validate without DCGM",
    ),
    Flag(
        "enable-gpu-bind-unbind-watch",
        "bool",
        "false",
        ("DCGM_EXPORTER_ENABLE_GPU_BIND_UNBIND_WATCH",),
        (),
        NO_DCGM,
    ),
    Flag(
        "gpu-bind-unbind-poll-interval",
        "string",
        "1s",
        ("DCGM_EXPORTER_GPU_BIND_UNBIND_POLL_INTERVAL",),
        (),
        NO_DCGM,
    ),
    Flag(
        "enable-pprof", "bool", "false", ("DCGM_EXPORTER_ENABLE_PPROF",), (), "no Go profiler here"
    ),
    Flag(
        "web-systemd-socket",
        "bool",
        "false",
        ("DCGM_EXPORTER_SYSTEMD_SOCKET",),
        (),
        "listens on --address",
    ),
    Flag(
        "web-read-timeout",
        "string",
        "",
        ("DCGM_EXPORTER_WEB_READ_TIMEOUT",),
        (),
        "no HTTP timeouts",
    ),
    Flag(
        "web-write-timeout",
        "string",
        "",
        ("DCGM_EXPORTER_WEB_WRITE_TIMEOUT",),
        (),
        "no HTTP timeouts",
    ),
    Flag(
        "config-file",
        "string",
        "",
        ("DCGM_EXPORTER_CONFIG_FILE",),
        (),
        "no YAML config: use the flags",
    ),
    Flag("watch-max-keep-age", "string", "", ("DCGM_EXPORTER_WATCH_MAX_KEEP_AGE",), (), NO_DCGM),
    Flag(
        "watch-max-keep-samples",
        "string",
        "",
        ("DCGM_EXPORTER_WATCH_MAX_KEEP_SAMPLES",),
        (),
        NO_DCGM,
    ),
    Flag(
        "health-require-gpus",
        "bool",
        "false",
        ("DCGM_EXPORTER_HEALTH_REQUIRE_GPUS",),
        (),
        "/health is always served",
    ),
    Flag(
        "max-concurrent-scrapes",
        "string",
        "",
        ("DCGM_EXPORTER_MAX_CONCURRENT_SCRAPES",),
        (),
        "scrapes read a snapshot",
    ),
    Flag(
        "enable-exporter-metrics",
        "bool",
        "false",
        ("DCGM_EXPORTER_ENABLE_EXPORTER_METRICS",),
        (),
        "gpu_operator_exporter_* are always served",
    ),
)
BY_NAME = {alias: f for f in FLAGS for alias in (f.name, *f.aliases)}


@dataclass(frozen=True)
class Parsed:
    values: Mapping[str, str]
    """Every flag's value (its long name → text; a slice joined with commas)."""
    unused: tuple[str, ...]
    """``--name=value (why)`` for each unused flag given a value other than its default."""

    def text(self, name: str) -> str:
        return self.values[name]

    def flag(self, name: str) -> bool:
        return parse_bool(self.values[name], f"--{name}")

    def number(self, name: str) -> int:
        text = self.values[name]
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"--{name} {text!r}: not an integer") from None

    def items(self, name: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.values[name].split(",") if p.strip())


def parse(args: Sequence[str], env: Mapping[str, str]) -> Parsed:
    """The values of every flag from ``args`` (flag > environment > default)."""
    given: dict[str, str] = {}
    slices: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise ConfigError(f"{arg!r}: dcgm-exporter takes no arguments, only flags")
        name, has_value, value = arg.lstrip("-").partition("=")
        flag = BY_NAME.get(name)
        if flag is None:
            raise ConfigError(f"{arg.partition('=')[0]}: no such flag of dcgm-exporter")
        if flag.kind == "bool":
            value = value if has_value else "true"
            parse_bool(value, f"--{flag.name}")
        elif not has_value:
            if i >= len(args):
                raise ConfigError(f"--{flag.name}: needs a value")
            value = args[i]
            i += 1
        if flag.kind == "slice":
            slices.setdefault(flag.name, []).append(value)
            value = ",".join(slices[flag.name])
        given[flag.name] = value
    values: dict[str, str] = {}
    unused: list[str] = []
    for flag in FLAGS:
        source = f"--{flag.name}"
        if flag.name in given:
            value = given[flag.name]
        else:
            var = next((e for e in flag.env if env.get(e, "") != ""), None)
            value = env[var] if var else flag.default
            if var:
                source = var
                if flag.kind == "bool":
                    parse_bool(value, var)
        values[flag.name] = value
        if flag.unused is not None and value != flag.default:
            shown = source if flag.kind == "bool" and value == "true" else f"{source}={value}"
            unused.append(f"{shown} ({flag.unused})")
    return Parsed(values, tuple(unused))


def usage() -> str:
    """The flags, one line each, for ``--help``."""
    lines = []
    for flag in FLAGS:
        names = ", ".join(
            f"-{a}" if len(a) <= 4 and "-" not in a else f"--{a}" for a in (*flag.aliases,)
        )
        head = f"--{flag.name}" + (f" ({names})" if names else "")
        env = f" [{', '.join(flag.env)}]" if flag.env else ""
        tail = f"; accepted, not used: {flag.unused}" if flag.unused else ""
        lines.append(f"{head}{env}{tail}")
    return "\n\n".join(lines)
