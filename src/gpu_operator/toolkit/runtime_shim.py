"""Our ``nvidia-container-runtime`` binary (the OCI runtime shim written in ``runtime_shim.c``):
where the image keeps it, how it is built (the image's build stage and the tests use the same
flags), and how a file is told apart from NVIDIA's runtime of the same name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gpu_operator.errors import ConfigError

SOURCE = Path(__file__).with_name("runtime_shim.c")
CFLAGS = ("-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-static", "-s")
"""Static: the binary runs on the host (containerd starts it), whatever libc the host has."""
IDENTITY = b"gpu-operator nvidia-container-runtime"
"""Printed by ``--gpu-operator-shim``, and so present in the binary's bytes."""
NAMES = (
    "nvidia-container-runtime",
    "nvidia-container-runtime.cdi",
    "nvidia-container-runtime.legacy",
)
"""Upstream's file names in ``<ROOT>/toolkit``; the suffix pins the mode (``cdi``, ``legacy``)."""


def default_binary() -> Path:
    """Where the image keeps the built shim: ``<venv>/libexec/gpu-operator/``."""
    return Path(sys.prefix) / "libexec" / "gpu-operator" / "nvidia-container-runtime"


def build(output: Path, *, cc: str = "cc") -> Path:
    """Compile the shim into ``output``; a compiler error is a ``ConfigError`` with its text."""
    output.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [cc, *CFLAGS, "-o", str(output), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise ConfigError(f"{SOURCE}: {cc} failed: {done.stderr.strip()[:2000]}")
    return output


def is_ours(path: Path) -> bool:
    """Whether ``path`` is this shim (any version), not NVIDIA's runtime or its wrapper."""
    try:
        return IDENTITY in path.read_bytes()
    except OSError:
        return False


if __name__ == "__main__":  # python -m gpu_operator.toolkit.runtime_shim OUTPUT (the image build)
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else default_binary())
