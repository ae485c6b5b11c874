"""The ``driver`` component: find the driver (on the host, or in the driver container once its
``.driver-ctr-ready`` exists), prove it answers (``nvidia-smi``, or NVML on a simulated node),
create the ``/dev/char`` links, and say where the driver lives (``driver-ready`` content)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from gpu_operator.errors import GpuOperatorError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.validator.running import ValidationFailed
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.status import DRIVER_CTR_READY, DriverReady

SMI_DIRS = ("usr/bin", "usr/sbin", "bin", "sbin", "opt/bin")
COMMAND_TIMEOUT_S = 120


def find_nvidia_smi(root: Path) -> Path | None:
    """The first executable ``nvidia-smi`` under ``root`` in upstream's search order."""
    wsl = root / "usr/lib/wsl/lib/nvidia-smi"
    for candidate in (wsl, *(root / d / "nvidia-smi" for d in SMI_DIRS)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_checked(check: str, argv: list[str]) -> str:
    """Run ``argv``; its output, or ``ValidationFailed`` naming the command and its output."""
    shown = " ".join(argv)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except FileNotFoundError as error:
        raise ValidationFailed(check, shown, f"not found: {error.filename}") from error
    except subprocess.TimeoutExpired as error:
        raise ValidationFailed(check, shown, f"no answer in {COMMAND_TIMEOUT_S}s") from error
    if done.returncode != 0:
        raise ValidationFailed(
            check, f"{shown} exited {done.returncode}", done.stdout + done.stderr
        )
    return done.stdout


def _smi_argv(root: Path, smi: Path, skip_gpu_init: bool) -> list[str]:
    inside = "/" + str(smi.relative_to(root))
    argv = [str(smi)] if root == Path("/") else ["chroot", str(root), inside]
    return [*argv, "--version"] if skip_gpu_init else argv


def check_simulated(hardware: HardwareSettings) -> str:
    """NVML through the facade on the simulated node: GPUs listed, driver version known."""
    try:
        with Nvml.open(hardware) as nvml:
            gpus = nvml.gpus()
            version = nvml.system().driver_version
    except GpuOperatorError as error:
        raise ValidationFailed(
            "driver", f"NVML on simulated node {hardware.sim}", str(error)
        ) from error
    if not gpus:
        raise ValidationFailed("driver", f"NVML on simulated node {hardware.sim}", "no GPUs")
    return f"driver {version}, {len(gpus)} GPUs"


def locate_and_check(settings: ValidatorSettings, hardware: HardwareSettings) -> DriverReady:
    """Which driver this node uses, after proving it answers."""
    host = settings.host_root_ctr_path
    if hardware.simulated:
        check_simulated(hardware)
        return DriverReady(True, settings.host_root, str(host), settings.host_root, str(host))
    smi = find_nvidia_smi(host)
    if smi is not None:
        run_checked("driver", _smi_argv(host, smi, settings.skip_gpu_init))
        return DriverReady(True, settings.host_root, str(host), settings.host_root, str(host))
    ready_flag = settings.output_dir / DRIVER_CTR_READY
    if not ready_flag.exists():
        raise ValidationFailed(
            "driver",
            f"stat {ready_flag}",
            f"no nvidia-smi on the host under {host} ({', '.join(SMI_DIRS)}) and the driver "
            "container is not ready yet",
        )
    driver = settings.driver_install_dir_ctr_path
    smi = find_nvidia_smi(driver)
    if smi is None:
        raise ValidationFailed("driver", f"find nvidia-smi under {driver}", "not found")
    run_checked("driver", _smi_argv(driver, smi, settings.skip_gpu_init))
    dev_in_driver = (driver / "dev/nvidiactl").exists()
    return DriverReady(
        False,
        settings.driver_install_dir,
        "/driver-root",
        settings.driver_install_dir if dev_in_driver else settings.host_root,
        "/driver-root" if dev_in_driver else str(host),
    )


def create_dev_char_symlinks(dev_dir: Path, char_dir: Path, host_dev: str = "/dev") -> list[Path]:
    """``<char_dir>/<major>:<minor>`` → ``<host_dev>/<name>`` for every NVIDIA character device
    under ``dev_dir`` (gpu-operator#430: systemd's cgroup driver needs them); the links made."""
    made: list[Path] = []
    if not char_dir.is_dir():
        return made
    candidates = [*dev_dir.glob("nvidia*"), *dev_dir.glob("nvidia-caps/nvidia-cap*")]
    for node in sorted(candidates):
        try:
            info = node.stat()
        except OSError:
            continue
        if not stat.S_ISCHR(info.st_mode):
            continue
        link = char_dir / f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
        target = f"{host_dev}/{node.relative_to(dev_dir)}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        made.append(link)
    return made


def validate_driver(settings: ValidatorSettings, hardware: HardwareSettings) -> str:
    """The whole driver check; the ``driver-ready`` content."""
    ready = locate_and_check(settings, hardware)
    if not settings.disable_dev_char_symlinks and not hardware.simulated:
        dev_root = (
            settings.host_root_ctr_path
            if ready.dev_root_ctr_path == str(settings.host_root_ctr_path)
            else settings.driver_install_dir_ctr_path
        )
        create_dev_char_symlinks(dev_root / "dev", settings.dev_char_dir)
    return ready.render()
