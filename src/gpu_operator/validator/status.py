"""The status files in ``/run/nvidia/validations``: their upstream names, the ``driver-ready``
KEY=VALUE content, and atomic writes (temp file, fsync, rename) so a reader never sees half a
file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpu_operator.errors import ConfigError
from gpu_operator.names import VALIDATIONS_DIR as VALIDATIONS_PATH

VALIDATIONS_DIR = Path(VALIDATIONS_PATH)

DRIVER_CTR_READY = ".driver-ctr-ready"
DRIVER_READY = "driver-ready"
TOOLKIT_READY = "toolkit-ready"
CUDA_READY = "cuda-ready"
PLUGIN_READY = "plugin-ready"
WORKLOAD_TYPE = "workload-type"

COMPONENT_FILES = {
    "driver": DRIVER_READY,
    "toolkit": TOOLKIT_READY,
    "cuda": CUDA_READY,
    "plugin": PLUGIN_READY,
}
"""Each gating component and the file it writes, in the order the validator pod runs them."""


@dataclass(frozen=True)
class DriverReady:
    """The content of ``driver-ready``: where the driver and device nodes are, on the host and
    as seen from operand containers (upstream's env-style lines, sourced by shell scripts)."""

    is_host_driver: bool
    driver_root: str
    driver_root_ctr_path: str
    dev_root: str
    dev_root_ctr_path: str

    @classmethod
    def host(cls) -> DriverReady:
        return cls(True, "/", "/host", "/", "/host")

    @classmethod
    def container(cls, driver_dir: str = "/run/nvidia/driver") -> DriverReady:
        return cls(False, driver_dir, "/driver-root", "/", "/host")

    def render(self) -> str:
        return (
            f"IS_HOST_DRIVER={'true' if self.is_host_driver else 'false'}\n"
            f"NVIDIA_DRIVER_ROOT={self.driver_root}\n"
            f"DRIVER_ROOT_CTR_PATH={self.driver_root_ctr_path}\n"
            f"NVIDIA_DEV_ROOT={self.dev_root}\n"
            f"DEV_ROOT_CTR_PATH={self.dev_root_ctr_path}\n"
        )

    @classmethod
    def parse(cls, text: str, *, source: str = DRIVER_READY) -> DriverReady:
        values: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ConfigError(f"{source}:{number}: expected KEY=VALUE, got {line!r}")
            values[key.strip()] = value.strip()
        try:
            return cls(
                values["IS_HOST_DRIVER"] == "true",
                values["NVIDIA_DRIVER_ROOT"],
                values["DRIVER_ROOT_CTR_PATH"],
                values["NVIDIA_DEV_ROOT"],
                values["DEV_ROOT_CTR_PATH"],
            )
        except KeyError as missing:
            raise ConfigError(f"{source}: missing key {missing.args[0]}") from None


def remove(path: Path) -> bool:
    """Delete a status file; whether it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
