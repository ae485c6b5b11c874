"""The NVML facade's core: one session over a pynvml-shaped object, its error translation, and
the inventory of full GPUs.

Every NVML call goes through ``_call``, which turns ``NVMLError_*`` into ``GpuError`` (or
``NoDriverError`` / ``GpuLostError``) with a message naming the GPU and the call, the NVML
error chained as the cause. The same code runs on ``pynvml`` and on the simulator.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from gpu_operator.errors import GpuError, GpuLostError, NoDriverError
from gpu_operator.gpu.backend import SIM_ENV, HardwareSettings, load_nvml
from gpu_operator.gpu.records import GpuInfo, MigMode, MigModeValue, SystemInfo

T = TypeVar("T")

NO_DRIVER_MESSAGE = (
    f"no NVIDIA driver found: libnvidia-ml.so.1 could not be loaded; set {SIM_ENV} to simulate"
)

_BRANDS = {
    0: "Unknown",
    1: "Quadro",
    2: "Tesla",
    3: "NVS",
    4: "Grid",
    5: "GeForce",
    6: "Titan",
    7: "NvidiaVApps",
    8: "NvidiaVPC",
    9: "NvidiaVCS",
    10: "NvidiaVWS",
    11: "NvidiaCloudGaming",
    12: "QuadroRTX",
    13: "NvidiaRTX",
    14: "Nvidia",
    15: "GeForceRTX",
    16: "TitanRTX",
}


def family_from_compute_capability(major: int, minor: int) -> str:
    """The GPU family as feature discovery labels it (``nvidia.com/gpu.family``)."""
    families = {
        1: "tesla",
        2: "fermi",
        3: "kepler",
        5: "maxwell",
        6: "pascal",
        9: "hopper",
        10: "blackwell",
        12: "blackwell",
        13: "rubin",
    }
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    return families.get(major, "undefined")


def error_text(error: Any) -> str:
    """An NVML error as words: pynvml's text, or (where pynvml would have to ask the library,
    e.g. under simulation) the class name spelt out: ``NVMLError_InUse`` → ``In Use``."""
    message = str(error)
    if message.startswith("NVML Error with code") or not message:
        name = type(error).__name__.removeprefix("NVMLError_")
        message = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name) or message
    return message


def text(value: Any) -> str:
    """NVML strings arrive as ``str`` or, from raw struct fields, as ``bytes``."""
    if isinstance(value, bytes):
        return value.decode(errors="replace").rstrip("\x00")
    return str(value)


class Closing:
    """``with x:`` closes ``x``: sessions, event watchers and GPM streams hold NVML resources."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NvmlSession(Closing):
    """An initialised NVML: open with ``NvmlSession.open()`` or use as a context manager."""

    def __init__(self, nvml: Any, *, sysfs_root: Path = Path("/sys")):
        self._nvml = nvml
        self._sysfs_root = sysfs_root
        self._handles: dict[int, Any] = {}
        self._pci_classes: dict[str, int | None] = {}
        self._open = False

    @classmethod
    def open(cls, settings: HardwareSettings | None = None, **options: Any) -> Self:
        """Load and initialise NVML; ``NoDriverError`` when there is no driver."""
        settings = settings or HardwareSettings.from_env()
        fake_options = {k: options.pop(k) for k in ("clock",) if k in options}
        session = cls(load_nvml(settings, **fake_options), **options)
        session._init()
        return session

    def _init(self) -> None:
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            no_driver = (nvml.NVML_ERROR_LIBRARY_NOT_FOUND, nvml.NVML_ERROR_DRIVER_NOT_LOADED)
            if error.value in no_driver:
                raise NoDriverError(
                    NO_DRIVER_MESSAGE, code=error.value, nvml_name=type(error).__name__
                ) from error
            raise self._wrap(error, "nvmlInit") from error
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._handles.clear()
            self._pci_classes.clear()
            self._nvml.nvmlShutdown()

    # --- calling NVML --------------------------------------------------------------------

    @property
    def nvml(self) -> Any:
        """The pynvml-shaped object (for constants and struct types)."""
        return self._nvml

    def _wrap(self, error: Any, what: str, gpu: int | None = None) -> GpuError:
        where = f"GPU {gpu}: " if gpu is not None else ""
        name = type(error).__name__
        message = f"{where}{what}: {error_text(error)}"
        if error.value == self._nvml.NVML_ERROR_GPU_IS_LOST:
            return GpuLostError(message, code=error.value, nvml_name=name)
        if error.value in (
            self._nvml.NVML_ERROR_LIBRARY_NOT_FOUND,
            self._nvml.NVML_ERROR_DRIVER_NOT_LOADED,
        ):
            return NoDriverError(NO_DRIVER_MESSAGE, code=error.value, nvml_name=name)
        return GpuError(message, code=error.value, nvml_name=name)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, gpu: int | None = None) -> T:
        try:
            return fn(*args)
        except self._nvml.NVMLError as error:
            raise self._wrap(error, what, gpu) from error

    def _optional(self, fn: Callable[..., T], *args: Any) -> T | None:
        """A query that some GPUs or drivers don't answer: ``None`` instead of an error."""
        try:
            return fn(*args)
        except self._nvml.NVMLError as error:
            unsupported = (
                self._nvml.NVML_ERROR_NOT_SUPPORTED,
                self._nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
                self._nvml.NVML_ERROR_INVALID_ARGUMENT,
                self._nvml.NVML_ERROR_NO_DATA,
            )
            if error.value in unsupported:
                return None
            if error.value == self._nvml.NVML_ERROR_GPU_IS_LOST:
                raise self._wrap(error, getattr(fn, "__name__", "nvml")) from error
            return None
        except AttributeError:  # an older binding without the function
            return None

    def is_code(self, error: GpuError, *names: str) -> bool:
        """Whether ``error`` carries one of the ``NVML_ERROR_<NAME>`` codes."""
        return any(error.code == getattr(self._nvml, f"NVML_ERROR_{n}") for n in names)

    # --- system and GPUs -----------------------------------------------------------------

    def system(self) -> SystemInfo:
        n = self._nvml
        return SystemInfo(
            driver_version=text(
                self._call("nvmlSystemGetDriverVersion", n.nvmlSystemGetDriverVersion)
            ),
            nvml_version=text(self._call("nvmlSystemGetNVMLVersion", n.nvmlSystemGetNVMLVersion)),
            cuda_driver_version=int(
                self._call("nvmlSystemGetCudaDriverVersion", n.nvmlSystemGetCudaDriverVersion)
            ),
        )

    def device_count(self) -> int:
        return int(self._call("nvmlDeviceGetCount", self._nvml.nvmlDeviceGetCount))

    def handle(self, index: int) -> Any:
        if index not in self._handles:
            self._handles[index] = self._call(
                "nvmlDeviceGetHandleByIndex",
                self._nvml.nvmlDeviceGetHandleByIndex,
                index,
                gpu=index,
            )
        return self._handles[index]

    def gpus(self) -> list[GpuInfo]:
        return [self.gpu(i) for i in range(self.device_count())]

    def gpu(self, index: int) -> GpuInfo:
        n, h = self._nvml, self.handle(index)

        def call(name: str, *args: Any) -> Any:
            return self._call(name, getattr(n, name), h, *args, gpu=index)

        pci = call("nvmlDeviceGetPciInfo")
        memory = call("nvmlDeviceGetMemoryInfo")
        major, minor = call("nvmlDeviceGetCudaComputeCapability")
        mig_mode = self.mig_mode(index)
        brand = self._optional(n.nvmlDeviceGetBrand, h)
        bus_id = text(pci.busId)
        return GpuInfo(
            index=index,
            uuid=text(call("nvmlDeviceGetUUID")),
            name=text(call("nvmlDeviceGetName")),
            pci_bus_id=bus_id,
            pci_device_id=int(pci.pciDeviceId),
            pci_subsystem_id=int(pci.pciSubSystemId),
            minor_number=int(call("nvmlDeviceGetMinorNumber")),
            memory_total_bytes=int(memory.total),
            compute_capability=(int(major), int(minor)),
            architecture=family_from_compute_capability(int(major), int(minor)),
            numa_node=self._numa_node(h, bus_id),
            brand=_BRANDS.get(int(brand), "Unknown") if brand is not None else "Unknown",
            serial=_text_or_none(self._optional(n.nvmlDeviceGetSerial, h)),
            vbios_version=_text_or_none(self._optional(n.nvmlDeviceGetVbiosVersion, h)),
            mig_capable=mig_mode is not None,
            mig_mode=mig_mode,
            pci_class=self._pci_class(h, bus_id),
        )

    def mig_mode(self, index: int) -> MigMode | None:
        """The GPU's MIG mode; ``None`` when the GPU is not MIG capable."""
        n = self._nvml
        try:
            current, pending = n.nvmlDeviceGetMigMode(self.handle(index))
        except n.NVMLError as error:
            if error.value in (n.NVML_ERROR_NOT_SUPPORTED, n.NVML_ERROR_FUNCTION_NOT_FOUND):
                return None
            raise self._wrap(error, "nvmlDeviceGetMigMode", index) from error

        def value(v: int) -> MigModeValue:
            return MigModeValue.ENABLED if v == n.NVML_DEVICE_MIG_ENABLE else MigModeValue.DISABLED

        return MigMode(current=value(current), pending=value(pending))

    def _pci_class(self, handle: Any, bus_id: str) -> int | None:
        """The device's PCI class, read once per device and session: it does not change while
        the driver is loaded, and ``nvmlDeviceGetPciInfoExt`` costs ~1.5 ms a call (measured on
        an H100 and an H200, driver 580), three times the rest of ``gpu()``."""
        if bus_id not in self._pci_classes:
            self._pci_classes[bus_id] = self._read_pci_class(handle, bus_id)
        return self._pci_classes[bus_id]

    def _read_pci_class(self, handle: Any, bus_id: str) -> int | None:
        """From ``nvmlDeviceGetPciInfoExt`` (R535+), else sysfs ``class`` (``0x030200``)."""
        n = self._nvml
        info_type = getattr(n, "nvmlPciInfoExt_v1_t", None)
        if info_type is not None:
            info = info_type()
            info.version = n.nvmlPciInfoExt_v1
            if (
                self._optional(n.nvmlDeviceGetPciInfoExt, handle, ctypes.byref(info)) is not None
                or info.baseClass
            ):
                return int(info.baseClass) << 8 | int(info.subClass)
        path = self._sysfs_root / "bus/pci/devices" / bus_id[-12:].lower() / "class"
        try:
            return int(path.read_text().strip(), 16) >> 8
        except (OSError, ValueError):
            return None

    def _numa_node(self, handle: Any, bus_id: str) -> int | None:
        node = self._optional(self._nvml.nvmlDeviceGetNumaNodeId, handle)
        if node is None:
            # sysfs names PCI devices with a 4-digit domain, lower case: 0000:3b:00.0
            path = self._sysfs_root / "bus/pci/devices" / bus_id[-12:].lower() / "numa_node"
            try:
                node = int(path.read_text().strip())
            except (OSError, ValueError):
                return None
        return int(node) if int(node) >= 0 else None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else text(value)
