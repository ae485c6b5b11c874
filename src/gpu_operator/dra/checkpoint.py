"""The prepared claims on disk (``<plugins>/gpu.nvidia.com/checkpoint.json``, upstream's file
name; the content is ours): claim UID → namespace, name and the devices returned to the
kubelet, so that a restarted plugin answers a repeated ``NodePrepareResources`` with the same
devices and can still unprepare what it prepared before. Written atomically (temp, fsync,
rename); an unreadable file is one ``ConfigError`` naming it, never silently emptied. A dynamic
MIG device also keeps the instance the driver created for it (``mig``: parent, profile,
placement, GPU/compute instance ids, MIG UUID), so a restarted driver destroys exactly that."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.host_files import write_atomically

CHECKPOINT_FILE = "checkpoint.json"
VERSION = "v1"


@dataclass(frozen=True)
class PreparedDevice:
    """One device of a prepared claim, as ``NodePrepareResources`` returns it."""

    request_names: tuple[str, ...]
    pool: str
    device: str
    cdi_ids: tuple[str, ...]
    mig: Mapping[str, Any] | None = None
    """The MIG device created for it (``mig_prepare.PreparedMig.to_dict()``), dynamic MIG only."""


@dataclass(frozen=True)
class PreparedClaim:
    namespace: str
    name: str
    devices: tuple[PreparedDevice, ...]


def _device_json(d: PreparedDevice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requestNames": list(d.request_names),
        "poolName": d.pool,
        "deviceName": d.device,
        "cdiDeviceIDs": list(d.cdi_ids),
    }
    if d.mig is not None:
        out["mig"] = dict(d.mig)
    return out


def dumps(claims: dict[str, PreparedClaim]) -> str:
    body = {
        "version": VERSION,
        "claims": {
            uid: {
                "namespace": c.namespace,
                "name": c.name,
                "devices": [_device_json(d) for d in c.devices],
            }
            for uid, c in sorted(claims.items())
        },
    }
    return json.dumps(body, indent=2) + "\n"


def loads(text: str, source: str) -> dict[str, PreparedClaim]:
    try:
        body = json.loads(text)
        if body.get("version") != VERSION:
            raise ValueError(f"version {body.get('version')!r}, expected {VERSION!r}")
        return {
            uid: PreparedClaim(
                namespace=c["namespace"],
                name=c["name"],
                devices=tuple(
                    PreparedDevice(
                        request_names=tuple(d["requestNames"]),
                        pool=d["poolName"],
                        device=d["deviceName"],
                        cdi_ids=tuple(d["cdiDeviceIDs"]),
                        mig=dict(d["mig"]) if d.get("mig") is not None else None,
                    )
                    for d in c["devices"]
                ),
            )
            for uid, c in body["claims"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{source}: not a DRA driver checkpoint: {error}") from error


def load(path: Path) -> dict[str, PreparedClaim]:
    """The checkpoint at ``path``; no file: nothing prepared yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the checkpoint: {error.strerror}") from error
    return loads(text, str(path))


def save(path: Path, claims: dict[str, PreparedClaim]) -> None:
    write_atomically(path, dumps(claims))
