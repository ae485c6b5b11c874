"""The one error hierarchy of gpu-operator.

    GpuOperatorError            anything the CLI reports as one clear line
    ├── ConfigError             bad input: a file, a flag, an environment variable
    ├── GpuError                an NVML call failed (wraps ``pynvml.NVMLError_*`` as ``__cause__``)
    │   ├── NoDriverError       libnvidia-ml could not be loaded or no driver is running
    │   └── GpuLostError        the GPU fell off the bus (``NVML_ERROR_GPU_IS_LOST``)
    └── KubeError               the Kubernetes API refused or failed a request

Every error carries a message that names what is wrong and where; the cause is chained, never
swallowed.
"""

from __future__ import annotations


class GpuOperatorError(Exception):
    """Root of every error that the CLI turns into one line and a non-zero exit."""


class ConfigError(GpuOperatorError):
    """Bad input: the message names the source (file, flag, env var), the key and the problem."""


class GpuError(GpuOperatorError):
    """An NVML call failed.

    ``code`` is NVML's numeric return code (``None`` when the error did not come from NVML) and
    ``nvml_name`` its ``NVMLError_*`` class name, so callers can branch on ``InUse``,
    ``InsufficientResources`` and friends without importing pynvml.
    """

    def __init__(self, message: str, *, code: int | None = None, nvml_name: str | None = None):
        super().__init__(message)
        self.code = code
        self.nvml_name = nvml_name


class NoDriverError(GpuError):
    """No usable NVIDIA driver: libnvidia-ml.so.1 is missing or the kernel module is not loaded."""


class GpuLostError(GpuError):
    """The GPU stopped answering (fell off the bus); every call on it fails until a reset."""


class KubeError(GpuOperatorError):
    """A Kubernetes API request failed; the message names the object and the verb."""
