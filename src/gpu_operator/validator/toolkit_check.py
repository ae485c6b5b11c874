"""The ``toolkit`` component. Upstream's proof is that ``nvidia-smi`` runs inside this very
container, which the nvidia runtime started with ``NVIDIA_VISIBLE_DEVICES=all``: we do the same
where ``nvidia-smi`` was injected ("injected" mode). Without a GPU (simulation, or a node with
no container engine to start one) we verify instead that the runtime config names our handler,
its binary exists, and a CDI spec is in place when CDI is on ("config" mode)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings
from gpu_operator.names import CDI_KIND, MANAGEMENT_CDI_KIND
from gpu_operator.toolkit import containerd_config, crio_config, docker_daemon
from gpu_operator.toolkit.host_files import read_text
from gpu_operator.toolkit.install import handlers
from gpu_operator.toolkit.settings import ToolkitSettings
from gpu_operator.validator.driver import run_checked
from gpu_operator.validator.running import ValidationFailed

STATIC_CDI_DIR = Path("/etc/cdi")


def configured_runtimes(toolkit: ToolkitSettings) -> dict[str, str | None]:
    """Handler → binary, from the runtime's config file and our drop-in."""
    found: dict[str, str | None] = {}
    for path in (toolkit.config, toolkit.drop_in):
        if path is None:
            continue
        text = read_text(path)
        if text is None:
            continue
        if toolkit.runtime == "docker":
            found.update(docker_daemon.runtime_names(docker_daemon.parse(text, source=str(path))))
        elif toolkit.runtime == "crio":
            doc = containerd_config.parse_toml(text, source=str(path))
            found.update(crio_config.runtime_names(doc))
        else:
            doc = containerd_config.parse_toml(text, source=str(path))
            found.update(containerd_config.runtime_names(doc))
    return found


def cdi_kinds(dirs: tuple[Path, ...]) -> set[str]:
    kinds = set()
    for directory in dirs:
        for spec in sorted([*directory.glob("*.yaml"), *directory.glob("*.json")]):
            try:
                data = yaml.safe_load(spec.read_text())
            except (yaml.YAMLError, OSError):
                continue
            if isinstance(data, dict) and data.get("devices"):
                kinds.add(str(data.get("kind")))
    return kinds


def check_config(toolkit: ToolkitSettings, cdi_dirs: tuple[Path, ...] | None = None) -> str:
    """Config mode; CDI specs are looked for in ``/etc/cdi`` and ``CDI_OUTPUT_DIR``."""
    cdi_dirs = cdi_dirs or (STATIC_CDI_DIR, toolkit.cdi_output_dir)
    where = f"{toolkit.config}" + (f" + {toolkit.drop_in}" if toolkit.drop_in else "")
    try:
        runtimes = configured_runtimes(toolkit)
    except ConfigError as error:
        raise ValidationFailed("toolkit", f"read {where}", str(error)) from error
    name = toolkit.runtime_name
    if name not in runtimes:
        raise ValidationFailed(
            "toolkit",
            f"look up runtime {name!r} in {where}",
            f"not configured (found: {', '.join(sorted(runtimes)) or 'none'}); the toolkit "
            "daemonset has not run 'toolkit install' on this node",
        )
    binary = runtimes[name]
    if binary and binary.startswith("/") and not Path(binary).exists():
        raise ValidationFailed("toolkit", f"stat {binary}", "the runtime's binary is missing")
    oci = any(h.binary is None for h in handlers(toolkit))
    if toolkit.cdi_enabled or oci:
        kinds = cdi_kinds(cdi_dirs)
        if not kinds & {CDI_KIND, MANAGEMENT_CDI_KIND}:
            shown = ", ".join(map(str, cdi_dirs))
            raise ValidationFailed(
                "toolkit", f"find a CDI spec in {shown}", f"no {CDI_KIND} spec (cdi-generate)"
            )
    return f"config mode: runtime {name} -> {binary or 'OCI runtime + CDI'} in {where}"


def validate_toolkit(
    hardware: HardwareSettings,
    toolkit: ToolkitSettings,
    *,
    cdi_dirs: tuple[Path, ...] | None = None,
) -> str:
    """The toolkit check; a line saying which mode proved it."""
    smi = shutil.which("nvidia-smi")
    if smi is not None and not hardware.simulated:
        run_checked("toolkit", [smi])
        return "injected mode: nvidia-smi ran in this container"
    return check_config(toolkit, cdi_dirs)
