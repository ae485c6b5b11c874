"""The driver container's readiness contract, as pure functions returning manifests and text:
the ``nvidia-driver-startup-probe`` ConfigMap (its script proves the module is loaded and
``nvidia-smi`` answers, then writes ``/run/nvidia/validations/.driver-ctr-ready``), the probe and
mounts that run it, the ready file's content, and ``DRIVER_CONFIG_DIGEST`` — the digest of
everything that changes what the driver container installs, so a restarted driver pod with an
unchanged config can skip the reinstall (the driver manager compares it with the one stored in
``/run/nvidia/nvidia-driver.state``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from gpu_operator.names import VALIDATIONS_DIR as VALIDATIONS_PATH

CONFIG_MAP = "nvidia-driver-startup-probe"
SCRIPT_KEY = "startup-probe.sh"
SCRIPT_PATH = "/usr/local/bin/startup-probe.sh"
VOLUME = "nvidia-driver-startup-probe"
READY_FILE = ".driver-ctr-ready"
DAEMONS_STATUS_FILE = ".driver-daemons-status"
VALIDATIONS_DIR = VALIDATIONS_PATH
STATE_FILE = "/run/nvidia/nvidia-driver.state"
DIGEST_ENV = "DRIVER_CONFIG_DIGEST"
FLAGS = ("GDS_ENABLED", "GDRCOPY_ENABLED", "GPU_DIRECT_RDMA_ENABLED")
# upstream's startup probe defaults: about 20 min to compile a driver (reference §2.4)
PROBE_DEFAULTS = {
    "initialDelaySeconds": 60,
    "periodSeconds": 10,
    "timeoutSeconds": 60,
    "failureThreshold": 120,
}

# Paths come from env with the production defaults, so the same script runs in tests.
SCRIPT = """#!/bin/sh
# nvidia-driver-startup-probe: ready when the driver is loaded and answers; then (and only then)
# write .driver-ctr-ready, which the validator's driver-validation waits for.
SYS_MODULE_DIR="${SYS_MODULE_DIR:-/sys/module}"
VALIDATIONS_DIR="${VALIDATIONS_DIR:-/run/nvidia/validations}"
GDS_ENABLED="${GDS_ENABLED:-false}"
GDRCOPY_ENABLED="${GDRCOPY_ENABLED:-false}"
GPU_DIRECT_RDMA_ENABLED="${GPU_DIRECT_RDMA_ENABLED:-false}"
need_module() {
  if [ ! -f "$SYS_MODULE_DIR/$1/refcnt" ]; then
    echo "startup probe: kernel module $1 is not loaded ($SYS_MODULE_DIR/$1/refcnt missing)"
    exit 1
  fi
}
need_module nvidia
if ! nvidia-smi >/dev/null 2>&1; then
  echo "startup probe: nvidia-smi failed"
  exit 1
fi
[ "$GPU_DIRECT_RDMA_ENABLED" = "true" ] && need_module nvidia_peermem
[ "$GDS_ENABLED" = "true" ] && need_module nvidia_fs
[ "$GDRCOPY_ENABLED" = "true" ] && need_module gdrdrv
mkdir -p "$VALIDATIONS_DIR"
tmp="$VALIDATIONS_DIR/.driver-ctr-ready.tmp"
printf 'GDS_ENABLED=%s\\nGDRCOPY_ENABLED=%s\\nGPU_DIRECT_RDMA_ENABLED=%s\\n' \\
  "$GDS_ENABLED" "$GDRCOPY_ENABLED" "$GPU_DIRECT_RDMA_ENABLED" > "$tmp"
mv -f "$tmp" "$VALIDATIONS_DIR/.driver-ctr-ready"
"""


def config_map(namespace: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``nvidia-driver-startup-probe`` ConfigMap (the renderer adds owner and hash)."""
    meta: dict[str, Any] = {"name": CONFIG_MAP, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {SCRIPT_KEY: SCRIPT}}


def startup_probe(overrides: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The driver container's ``startupProbe``: upstream's timings, the user's ``driver.
    startupProbe`` fields over them."""
    probe: dict[str, Any] = {"exec": {"command": ["sh", SCRIPT_PATH]}, **PROBE_DEFAULTS}
    probe.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return probe


def probe_volume() -> dict[str, Any]:
    return {"name": VOLUME, "configMap": {"name": CONFIG_MAP, "defaultMode": 0o755}}


def probe_mount() -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": SCRIPT_PATH, "subPath": SCRIPT_KEY, "readOnly": True}


def pre_stop() -> dict[str, Any]:
    """Removes the ready files when the driver container stops, so nothing trusts a driver that
    is going away."""
    files = f"{VALIDATIONS_DIR}/{READY_FILE} {VALIDATIONS_DIR}/{DAEMONS_STATUS_FILE}"
    return {"exec": {"command": ["sh", "-c", f"rm -f {files}"]}}


def ready_content(*, gds: bool, gdrcopy: bool, rdma: bool) -> str:
    """What the probe writes into ``.driver-ctr-ready`` (env-style, as ``driver-ready``)."""
    values = dict(zip(FLAGS, (gds, gdrcopy, rdma), strict=True))
    return "".join(f"{k}={str(v).lower()}\n" for k, v in values.items())


def parse_ready(text: str) -> dict[str, bool]:
    """The flags in a ``.driver-ctr-ready`` file; unknown lines are ignored, missing flags false."""
    found = dict.fromkeys(FLAGS, False)
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in found:
            found[key.strip()] = value.strip().lower() == "true"
    return found


# Container fields that never change what gets installed (and must not force a reinstall).
_VOLATILE_ENV = frozenset({DIGEST_ENV, "NODE_NAME"})


def config_digest(
    container: Mapping[str, Any], config_maps: Mapping[str, str] | None = None
) -> str:
    """``DRIVER_CONFIG_DIGEST`` for a rendered ``nvidia-driver-ctr`` container: sha256 (first
    16 hex) of its image, command, args, plain env (minus the digest itself and ``NODE_NAME``)
    and ConfigMap-backed mounts, plus ``config_maps`` (name → content version, e.g. the
    resourceVersion or a hash of the repo/cert/kernel-module ConfigMaps).

    The DaemonSet name, probes, tolerations and labels are not part of it: going from one pool
    to several renames the DaemonSet and restarts its pods, but reinstalls nothing.
    """
    env = sorted(
        (str(e["name"]), str(e.get("value", "")))
        for e in container.get("env") or ()
        if e.get("name") not in _VOLATILE_ENV and "valueFrom" not in e
    )
    mounts = sorted(
        (str(m.get("name")), str(m.get("mountPath"))) for m in container.get("volumeMounts") or ()
    )
    material = {
        "image": container.get("image"),
        "command": container.get("command"),
        "args": container.get("args"),
        "env": env,
        "mounts": mounts,
        "configMaps": sorted((config_maps or {}).items()),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_digest(state_text: str | None) -> str | None:
    """The digest in ``/run/nvidia/nvidia-driver.state`` — ``DRIVER_CONFIG_DIGEST=<hex>`` or the
    bare digest; ``None`` when there is no file or no digest in it."""
    if not state_text:
        return None
    for line in state_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == DIGEST_ENV:
            return value.strip() or None
        if not sep and line.strip():
            return line.strip()
    return None


def state_text(digest: str) -> str:
    """What the driver container writes to the state file once the driver is installed."""
    return f"{DIGEST_ENV}={digest}\n"
