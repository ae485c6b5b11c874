"""The validator's settings: upstream ``nvidia-validator`` flags and environment variables as one
frozen object (the CLI fills it; tests build it directly)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpu_operator.errors import ConfigError
from gpu_operator.validator.status import VALIDATIONS_DIR

COMPONENTS = ("driver", "toolkit", "cuda", "plugin", "metrics")
MIG_STRATEGIES = ("none", "single", "mixed")
SKIPPABLE = ("toolkit", "cuda", "plugin")
"""Components whose status file carries nothing, so ``SKIP_VALIDATION`` may write it bare."""


@dataclass(frozen=True)
class ValidatorSettings:
    component: str
    """``-c/--component`` (``COMPONENT``)."""
    with_wait: bool = False
    """``-w/--with-wait`` (``WITH_WAIT``): retry every sleep interval until the check passes."""
    with_workload: bool = True
    """``-l/--with-workload`` (``WITH_WORKLOAD``): run the validation pod (cuda, plugin)."""
    output_dir: Path = VALIDATIONS_DIR
    """``-o/--output-dir`` (``OUTPUT_DIR``)."""
    sleep_interval_s: float = 5.0
    """``-s/--sleep-interval-seconds`` (``SLEEP_INTERVAL_SECONDS``)."""
    mig_strategy: str = "single"
    """``-m/--mig-strategy`` (``MIG_STRATEGY``)."""
    metrics_port: int = 0
    """``-p/--metrics-port`` (``METRICS_PORT``); the ``metrics`` component serves on it."""
    node_name: str = ""
    """``-n/--node-name`` (``NODE_NAME``)."""
    namespace: str = "gpu-operator"
    """``--namespace`` (``OPERATOR_NAMESPACE``)."""
    disable_dev_char_symlinks: bool = False
    """``DISABLE_DEV_CHAR_SYMLINK_CREATION``."""
    host_root: str = "/"
    """``HOST_ROOT``: the host's root as the host sees it (goes into ``driver-ready``)."""
    host_root_ctr_path: Path = Path("/host")
    """Where the host root is mounted in this container."""
    driver_install_dir: str = "/run/nvidia/driver"
    """``DRIVER_INSTALL_DIR``: the containerised driver's root on the host."""
    driver_install_dir_ctr_path: Path = Path("/run/nvidia/driver")
    """``DRIVER_INSTALL_DIR_CTR_PATH``: the same directory inside this container."""
    dev_char_dir: Path = Path("/host-dev-char")
    """Where the host's ``/dev/char`` is mounted (upstream mount path)."""
    skip_gpu_init: bool = False
    """``DRIVER_VALIDATION_SKIP_GPU_INIT``: ``nvidia-smi --version`` instead of a GPU query."""
    cleanup_all: bool = False
    """``-r/--cleanup-all`` (``CLEANUP_ALL``): remove the output directory's files first."""
    skip_validation: bool = False
    """``--skip-validation`` (``SKIP_VALIDATION``): write the status file without the check
    (``SKIPPABLE`` components only)."""
    plugin_poll_attempts: int = 30
    """Node capacity polls of the plugin check (upstream: 30 × 5 s)."""
    pod_poll_attempts: int = 60
    """Pod phase polls of the cuda/plugin workloads (upstream: 60 × 5 s)."""

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            raise ConfigError(
                f"COMPONENT={self.component!r}: expected one of {', '.join(COMPONENTS)}"
            )
        if self.mig_strategy not in MIG_STRATEGIES:
            raise ConfigError(
                f"MIG_STRATEGY={self.mig_strategy!r}: expected one of {', '.join(MIG_STRATEGIES)}"
            )
        if self.skip_validation and self.component not in SKIPPABLE:
            raise ConfigError(
                f"SKIP_VALIDATION: skipping validation is not supported for component "
                f"{self.component!r} (only {', '.join(SKIPPABLE)})"
            )
        if self.sleep_interval_s < 0:
            raise ConfigError(f"SLEEP_INTERVAL_SECONDS={self.sleep_interval_s}: must be >= 0")
        if self.component in ("cuda", "plugin") and self.with_workload and not self.node_name:
            pass  # checked when the pod is created: NODE_NAME is needed to pin it
