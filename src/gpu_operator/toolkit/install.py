"""``toolkit install`` and ``toolkit uninstall``: plan each host file's new text (pure, from its
current text, its backup and the settings), refuse what the runtime can't do, write what
changed atomically with a backup, then restart the runtime once. Running twice writes nothing;
uninstall restores each file byte for byte (or reverts only our keys if the user edited it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import yaml

from gpu_operator.errors import ConfigError
from gpu_operator.hostpaths import host_path
from gpu_operator.toolkit import (
    containerd_config,
    crio_config,
    docker_daemon,
    documents,
    runtime_shim,
    shim_install,
)
from gpu_operator.toolkit.capabilities import detect_version, parse_version, refusal, require
from gpu_operator.toolkit.cdi_generate import CdiOptions, management_spec, spec_file_name
from gpu_operator.toolkit.containerd_config import Handler
from gpu_operator.toolkit.documents import Edit
from gpu_operator.toolkit.driver_tree import device_nodes, discover, driver_version
from gpu_operator.toolkit.host_files import (
    Backup,
    BackupStore,
    digest,
    original_of,
    read_text,
    write_atomically,
)
from gpu_operator.toolkit.restart import signal_runtime, systemd_restart
from gpu_operator.toolkit.settings import DEFAULT_CONFIG, ToolkitSettings

Log = Callable[[str], None]


@dataclass(frozen=True)
class FilePlan:
    path: Path
    before: str | None
    after: str
    edits: tuple[Edit, ...]

    @property
    def changes(self) -> bool:
        return self.before != self.after


def runtime_binary(settings: ToolkitSettings) -> str:
    """Which binary the handlers run: ``nvidia`` (NVIDIA's, found in ``<root>/toolkit``),
    ``gpu-operator`` (our shim, which install puts there) or ``oci`` (the plain runtime)."""
    mode = settings.binary_mode
    installed = settings.toolkit_dir / "nvidia-container-runtime"
    if mode == "auto":
        if installed.exists() and not runtime_shim.is_ours(installed):
            return "nvidia"
        return "gpu-operator" if settings.shim_binary.is_file() else "oci"
    if mode == "gpu-operator" and not settings.shim_binary.is_file():
        raise ConfigError(
            f"GPU_OPERATOR_RUNTIME_BINARY=gpu-operator: the runtime shim {settings.shim_binary} "
            "is missing (GPU_OPERATOR_RUNTIME_SHIM names where this image keeps it)"
        )
    return mode


def handlers(settings: ToolkitSettings) -> list[Handler]:
    """Our runtime handlers: the runtime binaries (NVIDIA's or our shim, same file names), or
    the plain OCI runtime with CDI."""
    mode = runtime_binary(settings)
    binary = settings.toolkit_dir / "nvidia-container-runtime"
    if mode == "oci":
        return [Handler(settings.runtime_name, None), Handler("nvidia-cdi", None)]
    return [
        Handler(settings.runtime_name, str(binary)),
        Handler("nvidia-cdi", f"{binary}.cdi"),
        Handler("nvidia-legacy", f"{binary}.legacy"),
    ]


def _is_json(path: Path, settings: ToolkitSettings) -> bool:
    return settings.runtime == "docker" or path.suffix == ".json"


def _parse(text: str | None, path: Path, settings: ToolkitSettings) -> Any:
    if _is_json(path, settings):
        return docker_daemon.parse(text or "", source=str(path))
    return containerd_config.parse_toml(text or "", source=str(path))


def _render(doc: Any, path: Path, settings: ToolkitSettings, before: str | None) -> str:
    if _is_json(path, settings):
        return docker_daemon.render(doc, indent=docker_daemon.indent_of(before or ""))
    return tomlkit.dumps(doc)


def _edits_for(doc: Any, settings: ToolkitSettings, source: str) -> list[Edit]:
    chosen = handlers(settings)
    default = settings.runtime_name if settings.set_as_default else None
    if settings.runtime == "containerd":
        return containerd_config.plan(
            doc,
            source=source,
            handlers=chosen,
            default=default,
            runtime_type=settings.runtime_type,
            cdi=settings.cdi_enabled,
        )
    if settings.runtime == "crio":
        return crio_config.plan(doc, source=source, handlers=chosen, default=default)
    return docker_daemon.plan(chosen, default=default, cdi=settings.cdi_enabled)


def _plan_file(
    path: Path,
    settings: ToolkitSettings,
    store: BackupStore,
    make_edits: Callable[[Any], list[Edit]],
    start: Callable[[Any], Any] | None = None,
) -> FilePlan:
    before = read_text(path)
    doc = _parse(before, path, settings)
    backup = store.load(path)
    reverted = False
    if backup is not None:  # a reinstall: start again from the original where we can
        original_text = backup.original.decode() if backup.original is not None else None
        if before is not None and digest(before.encode()) == backup.written_digest:
            doc = _parse(original_text, path, settings)
            before_edit = original_text
            reverted = True
            if before_edit is None and start is not None:
                doc = start(doc)
        else:
            reverted = documents.revert(doc, _parse(original_text, path, settings), backup.edits)
    if start is not None and before is None and backup is None:
        doc = start(doc)
    edits = make_edits(doc)
    changed = documents.apply(doc, edits, is_toml=not _is_json(path, settings))
    if before is not None and not changed and not reverted:
        after = before  # already configured: not even a re-rendering
    else:
        after = _render(doc, path, settings, before)
    return FilePlan(path, before, after, tuple(edits))


def plan(settings: ToolkitSettings, store: BackupStore) -> list[FilePlan]:
    """Every host file's new text for ``settings``."""
    config = settings.config
    if settings.runtime == "docker" or settings.drop_in is None:
        return [_plan_file(config, settings, store, lambda d: _edits_for(d, settings, str(config)))]
    drop_in = settings.drop_in
    host_path = str(settings.drop_in_host_path or drop_in)
    if settings.runtime == "crio":
        return [
            _plan_file(drop_in, settings, store, lambda d: _edits_for(d, settings, str(drop_in)))
        ]
    main_text = read_text(config)
    main_doc = containerd_config.parse_toml(main_text or "", source=str(config))
    if main_text is None:
        main_doc["version"] = 2

    def main_edits(doc: Any) -> list[Edit]:
        edits = [containerd_config.import_edit(host_path)]
        if "version" not in doc:
            edits.insert(0, Edit(("version",), 2))
        return edits

    def drop_in_start(_doc: Any) -> Any:
        return containerd_config.drop_in_document(main_doc, source=str(config))

    return [
        _plan_file(config, settings, store, main_edits),
        _plan_file(
            drop_in,
            settings,
            store,
            lambda d: _edits_for(d, settings, str(drop_in)),
            start=drop_in_start,
        ),
    ]


def check_capabilities(settings: ToolkitSettings) -> None:
    version = (
        parse_version(settings.runtime_version)
        if settings.runtime_version
        else detect_version(settings.runtime, settings.host_root)
    )
    config_version = None
    if settings.runtime == "containerd":
        text = read_text(settings.config)
        if text is not None:
            doc = containerd_config.parse_toml(text, source=str(settings.config))
            config_version = containerd_config.config_version(doc, source=str(settings.config))
    oci = any(h.binary is None for h in handlers(settings))
    require(
        refusal(
            settings.runtime,
            version,
            cdi=settings.cdi_enabled,
            config_version=config_version,
            oci_binary=oci,
        )
    )


def restart_runtime(settings: ToolkitSettings, log: Log) -> None:
    if settings.restart_mode == "none":
        log("restart mode none: restart the runtime yourself to load the new config")
    elif settings.restart_mode == "signal":
        pid = signal_runtime(settings.socket)
        log(f"sent SIGHUP to {settings.runtime} (pid {pid}, owner of {settings.socket})")
    else:
        systemd_restart(settings.unit, settings.host_root)
        log(f"restarted {settings.unit} with systemctl")


def management_spec_text(settings: ToolkitSettings) -> str | None:
    """The ``management.nvidia.com/gpu`` spec (YAML) for this node's driver and device nodes,
    or None when no driver is found under the driver root."""
    root = settings.driver_root_ctr_path or settings.driver_root
    version = driver_version(root)
    if version is None:
        return None
    dev_root = settings.dev_root or Path("/")
    tree = discover(root, version, host_root=settings.driver_root)
    options = CdiOptions(dev_root=str(dev_root), modeset=(dev_root / "dev/nvidia-modeset").exists())
    spec = management_spec(tree, device_nodes(dev_root), options)
    return yaml.safe_dump(spec, sort_keys=False)


def write_management_spec(settings: ToolkitSettings, store: BackupStore, log: Log) -> None:
    """With CDI on, write (or refresh) the management spec; uninstall removes it."""
    text = management_spec_text(settings)
    if text is None:
        log(f"no driver under {settings.driver_root}: management CDI spec not written")
        return
    path = settings.cdi_output_dir / spec_file_name(settings.cdi_kind)
    if read_text(path) == text:
        return
    backup = store.load(path)
    original, mode = original_of(path) if backup is None else (backup.original, backup.mode)
    write_atomically(path, text)
    store.save(Backup(path, original, mode, digest(text.encode()), ()))
    log(f"wrote {path}")


CONFIG_VARIABLE = {
    "containerd": "CONTAINERD_CONFIG",
    "crio": "CRIO_CONFIG",
    "docker": "DOCKER_CONFIG",
}


def created_lines(settings: ToolkitSettings, path: Path, no_directory: bool) -> list[str]:
    """What to say about a runtime config file install created: one line that it did, and,
    when even its directory was missing (a mistyped path?) and the runtime reads its config
    from elsewhere by default, a warning that the runtime will not read this one."""
    what = "no config existed there" + (
        f", nor its directory {path.parent}" if no_directory else ""
    )
    lines = [f"created {path}: {what}"]
    default = host_path(DEFAULT_CONFIG[settings.runtime])
    if no_directory and path == settings.config and path != default:
        lines.append(
            f"warning: {settings.runtime} reads {default}, not {path}, unless it is started "
            f"with that file: check RUNTIME_CONFIG/{CONFIG_VARIABLE[settings.runtime]}"
        )
    return lines


def install(
    settings: ToolkitSettings, *, log: Log = lambda line: None, dry_run: bool = False
) -> list[Path]:
    """Configure the runtime (and, with CDI, write the management spec); the runtime config
    files changed (none when already configured)."""
    if settings.no_runtime_config:
        log("NO_RUNTIME_CONFIG is set: runtime config left alone")
        return []
    check_capabilities(settings)
    if settings.cdi_enabled and not dry_run:
        write_management_spec(settings, BackupStore(settings.backup_dir), log)
    store = BackupStore(settings.backup_dir)
    plans = plan(settings, store)  # every file is parsed and planned before any is written
    changed = [p for p in plans if p.changes]
    if runtime_binary(settings) == "gpu-operator":
        # before the runtime config points at them; not undone by uninstall (running
        # containers' shims exec the binary to stop them)
        shim_files = shim_install.install(settings, log, dry_run=dry_run)
        if dry_run:
            return shim_files + [p.path for p in changed]
    if dry_run:
        return [p.path for p in changed]
    for file_plan in changed:
        backup = store.load(file_plan.path)
        if backup is None:
            original, mode = original_of(file_plan.path)
        else:
            original, mode = backup.original, backup.mode
        created = backup is None and original is None
        no_directory = created and not file_plan.path.parent.is_dir()
        write_atomically(file_plan.path, file_plan.after)
        store.save(
            Backup(
                file_plan.path, original, mode, digest(file_plan.after.encode()), file_plan.edits
            )
        )
        if created:
            for line in created_lines(settings, file_plan.path, no_directory):
                log(line)
        else:
            log(f"configured {file_plan.path} (backup in {settings.backup_dir})")
    if changed:
        restart_runtime(settings, log)
    else:
        log(f"{settings.runtime} is already configured: nothing to change")
    return [p.path for p in changed]


def _restore(backup: Backup, settings: ToolkitSettings, log: Log) -> bool:
    path = backup.path
    current, _ = original_of(path)
    if current is not None and digest(current) != backup.written_digest:
        doc = _parse(current.decode(), path, settings)
        original = _parse(
            backup.original.decode() if backup.original is not None else None, path, settings
        )
        if not documents.revert(doc, original, backup.edits):
            return False
        write_atomically(path, _render(doc, path, settings, current.decode()))
        if backup.original is not None:
            kept = settings.backup_dir / f"{path.name}.orig"
            write_atomically(kept, backup.original, mode=0o600)
            log(f"{path} changed since install: removed only our keys (original kept in {kept})")
        return True
    if backup.original is None:
        path.unlink(missing_ok=True)
        log(f"removed {path}")
    else:
        write_atomically(path, backup.original, mode=backup.mode)
        log(f"restored {path}")
    return True


def uninstall(settings: ToolkitSettings, *, log: Log = lambda line: None) -> list[Path]:
    """Undo ``install``; the files changed."""
    store = BackupStore(settings.backup_dir)
    changed = []
    for backup in store.all():
        if _restore(backup, settings, log):
            changed.append(backup.path)
        store.drop(backup.path)
    if changed:
        restart_runtime(settings, log)
    else:
        log("nothing to undo")
    return changed
