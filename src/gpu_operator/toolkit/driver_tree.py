"""What a driver installation provides, found under its root (``/`` for a host driver,
``/run/nvidia/driver`` for the driver container): user-space libraries of the running version,
binaries, GSP firmware, IPC sockets and device nodes; each library's SONAME from its ELF
header (or the driver's known SONAME when the file is not ELF)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

LIB_DIRS = (
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "lib64",
    "usr/lib",
)
LIB_PREFIXES = (
    "libcuda.",
    "libcudadebugger.",
    "libnvidia-",
    "libnvcuvid.",
    "libnvoptix.",
    "libGLX_nvidia.",
    "libEGL_nvidia.",
    "libGLESv1_CM_nvidia.",
    "libGLESv2_nvidia.",
    "libvdpau_nvidia.",
)
KNOWN_SONAMES = {
    "libcuda": "libcuda.so.1",
    "libcudadebugger": "libcudadebugger.so.1",
    "libnvidia-ml": "libnvidia-ml.so.1",
    "libnvidia-ptxjitcompiler": "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-opencl": "libnvidia-opencl.so.1",
    "libnvidia-encode": "libnvidia-encode.so.1",
    "libnvidia-fbc": "libnvidia-fbc.so.1",
    "libnvidia-nvvm": "libnvidia-nvvm.so.4",
    "libnvcuvid": "libnvcuvid.so.1",
    "libnvoptix": "libnvoptix.so.1",
    "libGLX_nvidia": "libGLX_nvidia.so.0",
    "libEGL_nvidia": "libEGL_nvidia.so.0",
    "libGLESv2_nvidia": "libGLESv2_nvidia.so.2",
    "libGLESv1_CM_nvidia": "libGLESv1_CM_nvidia.so.1",
    "libvdpau_nvidia": "libvdpau_nvidia.so.1",
}
BINARIES = (
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
    "nvidia-imex",
    "nvidia-imex-ctl",
)
SOCKETS = (
    "run/nvidia-persistenced/socket",
    "run/nvidia-fabricmanager/socket",
    "tmp/nvidia-mps",
)


@dataclass(frozen=True)
class Library:
    path: str
    """Path on the host (the driver root's prefix included)."""
    soname: str


@dataclass(frozen=True)
class DriverTree:
    root: Path
    version: str
    libraries: tuple[Library, ...]
    binaries: tuple[str, ...]
    firmware: tuple[str, ...]
    sockets: tuple[str, ...]
    host_root: Path | None = None
    """The driver root as the host sees it (the prefix of every path above); default ``root``."""

    @property
    def host_prefix(self) -> Path:
        return self.host_root or self.root

    @property
    def lib_dirs(self) -> list[str]:
        return sorted({str(Path(lib.path).parent) for lib in self.libraries})


def elf_soname(path: Path) -> str | None:
    """DT_SONAME of a 64-bit little-endian ELF shared object, or None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    for section in sections:
        if section[1] != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[section[6]]
        offset, size = section[4], section[5]
        for at in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == 14:  # DT_SONAME
                start = strtab[4] + value
                return data[start : data.index(b"\0", start)].decode()
    return None


def soname_of(path: Path, version: str) -> str:
    found = elf_soname(path)
    if found:
        return found
    stem = path.name.split(".so.")[0]
    return KNOWN_SONAMES.get(stem, path.name)


def _host(root: Path, found: Path, host_root: Path | None) -> str:
    inside = "/" + str(found.relative_to(root))
    return (
        str((host_root or root) / inside.lstrip("/"))
        if (host_root or root) != Path("/")
        else inside
    )


def driver_version(root: Path) -> str | None:
    """The driver version under ``root``, from its ``libcuda.so.<version>``."""
    for directory in LIB_DIRS:
        for candidate in sorted((root / directory).glob("libcuda.so.*.*")):
            version = candidate.name.removeprefix("libcuda.so.")
            if version.replace(".", "").isdigit():
                return version
    return None


def device_nodes(dev_root: Path) -> list[str]:
    """Every GPU and MIG capability device node under ``dev_root``, as container paths."""
    found = [
        *(dev_root / "dev").glob("nvidia[0-9]*"),
        *(dev_root / "dev").glob("nvidia-caps/nvidia-cap*"),
    ]
    return sorted("/" + str(p.relative_to(dev_root)) for p in found)


def discover(root: Path, version: str, *, host_root: Path | None = None) -> DriverTree:
    """The driver ``version``'s files under ``root`` (paths reported under ``host_root``,
    default ``root``: the container may see the driver elsewhere than the host does)."""
    libraries = []
    for directory in LIB_DIRS:
        for candidate in sorted((root / directory).glob(f"*.so.{version}")):
            if candidate.name.startswith(LIB_PREFIXES) and candidate.is_file():
                libraries.append(
                    Library(_host(root, candidate, host_root), soname_of(candidate, version))
                )
        if libraries:
            break
    binaries = [
        _host(root, root / d / name, host_root)
        for name in BINARIES
        for d in ("usr/bin",)
        if (root / d / name).is_file()
    ]
    firmware = [
        _host(root, f, host_root)
        for f in sorted((root / "lib/firmware/nvidia" / version).glob("gsp*.bin"))
    ]
    sockets = [_host(root, root / s, host_root) for s in SOCKETS if (root / s).exists()]
    return DriverTree(
        root, version, tuple(libraries), tuple(binaries), tuple(firmware), tuple(sockets), host_root
    )
