"""A kubeconfig file for the emulator, so ``kubectl --kubeconfig PATH`` and client libraries
find it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "gpu-operator-sandbox"


def kubeconfig(server: str, token: str | None = None, namespace: str = "default") -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": user}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, token: str | None = None) -> Path:
    """Write the kubeconfig atomically (temp file, then rename), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(yaml.safe_dump(kubeconfig(server, token), sort_keys=False))
    os.chmod(temp, 0o600)
    temp.replace(path)
    return path
