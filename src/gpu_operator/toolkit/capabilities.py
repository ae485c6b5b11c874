"""What the node's container runtime can do (its version: containerd ≥ 1.7 and Docker ≥ 25
read CDI; containerd ≥ 2.0 reads config version 3), and a clear refusal when the requested
mode cannot work. Detection runs the runtime's ``--version`` in the host root."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gpu_operator.errors import ConfigError

BINARIES = {
    "containerd": ("usr/bin/containerd", "usr/local/bin/containerd"),
    "docker": ("usr/bin/dockerd", "usr/local/bin/dockerd"),
    "crio": ("usr/bin/crio", "usr/local/bin/crio"),
}


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first ``X.Y[.Z]`` in a ``--version`` line (``v`` prefix and ``~ds1`` suffixes ok)."""
    match = re.search(r"\bv?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def detect_version(runtime: str, host_root: Path) -> tuple[int, int, int] | None:
    """The runtime's version, or None when its binary is not found or does not answer."""
    for relative in BINARIES[runtime]:
        binary = host_root / relative
        if not binary.is_file():
            continue
        argv = [str(binary), "--version"]
        if host_root != Path("/"):
            argv = ["chroot", str(host_root), "/" + relative, "--version"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_version(done.stdout + done.stderr) if done.returncode == 0 else None
    return None


def shown(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def refusal(
    runtime: str,
    version: tuple[int, int, int] | None,
    *,
    cdi: bool,
    config_version: int | None = None,
    oci_binary: bool = False,
) -> str | None:
    """Why the requested mode cannot work on this runtime, or None. An unknown version is
    not refused (the runtime's own check will speak when it loads the config)."""
    if oci_binary and not cdi:
        return (
            "the plain OCI runtime gives containers no GPUs without CDI: set CDI_ENABLED=true, "
            "or use a runtime binary (GPU_OPERATOR_RUNTIME_BINARY=gpu-operator with the image's "
            "shim, or nvidia with NVIDIA's nvidia-container-runtime installed)"
        )
    if version is None:
        return None
    if runtime == "containerd":
        if cdi and version < (1, 7, 0):
            return (
                f"CDI_ENABLED=true needs containerd >= 1.7 (this node has {shown(version)}, "
                "which ignores enable_cdi): set CDI_ENABLED=false or upgrade containerd"
            )
        if config_version == 3 and version < (2, 0, 0):
            return (
                f"the config file is version 3, which containerd {shown(version)} cannot read "
                "(version 3 needs containerd >= 2.0)"
            )
    if runtime == "docker" and cdi and version < (25, 0, 0):
        return (
            f"CDI_ENABLED=true needs Docker >= 25 (this node has {shown(version)}): set "
            "CDI_ENABLED=false or upgrade Docker"
        )
    return None


def require(reason: str | None) -> None:
    if reason is not None:
        raise ConfigError(f"refusing to configure the runtime: {reason}")
