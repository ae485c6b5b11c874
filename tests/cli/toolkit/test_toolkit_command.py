"""``gpu-operator toolkit`` as the DaemonSet runs it: upstream env vars, and the daemon mode that
configures, waits, and on SIGTERM restores the file byte for byte."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-c", "from gpu_operator.cli import main; main()", "toolkit"]


def env_for(config: Path, root: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RUNTIME": "containerd",
        "CONTAINERD_CONFIG": str(config),
        "ROOT": str(root),
        "RUNTIME_RESTART_MODE": "none",
        "GPU_OPERATOR_RUNTIME_VERSION": "1.7.22",
        **extra,
    }


def test_install_and_uninstall_follow_the_upstream_environment_variables(
    copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    config = copy_config("containerd-1.7-default.toml")
    original = config.read_bytes()
    env = env_for(config, toolkit_root, CONTAINERD_RUNTIME_CLASS="nvidia-gpu", CDI_ENABLED="true")
    done = subprocess.run([*CLI, "install"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    text = config.read_text()
    assert "runtimes.nvidia-gpu]" in text
    assert 'default_runtime_name = "nvidia-gpu"' in text
    assert "enable_cdi = true" in text
    dry = subprocess.run(
        [*CLI, "install", "--dry-run"], env=env, capture_output=True, text=True, check=False
    )
    assert dry.stdout == "", "configured already: nothing would change"
    subprocess.run([*CLI, "uninstall"], env=env, capture_output=True, check=True)
    assert config.read_bytes() == original


def test_a_malformed_config_fails_with_one_line_naming_file_and_line(
    copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    config = copy_config("containerd-malformed.toml")
    done = subprocess.run(
        [*CLI, "install"], env=env_for(config, toolkit_root), capture_output=True, text=True
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"gpu-operator: {config}:5:")


def test_the_daemon_mode_undoes_its_change_on_sigterm(
    tmp_path: Path, copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    config = copy_config("containerd-commented.toml")
    original = config.read_bytes()
    pid_file = tmp_path / "toolkit.pid"
    env = env_for(config, toolkit_root, NO_DAEMON="false", TOOLKIT_PID_FILE=str(pid_file))
    daemon = subprocess.Popen([*CLI, "install"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists():
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert pid_file.read_text().strip() == str(daemon.pid)
        assert "nvidia-container-runtime" in config.read_text()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(20) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.communicate()
    assert config.read_bytes() == original
    assert not pid_file.exists()


def test_the_v1_positional_destination_is_the_toolkit_install_directory(
    copy_config: Callable[[str], Path], toolkit_root: Path, tmp_path: Path
) -> None:
    """NVIDIA's v1.x DaemonSet runs `nvidia-toolkit /usr/local/nvidia`: the argument wins over
    ROOT (the install's state lives under it)."""
    config = copy_config("containerd-1.7-default.toml")
    destination = tmp_path / "from-argument"
    env = env_for(config, toolkit_root, NO_DAEMON="true", CDI_ENABLED="true")
    done = subprocess.run(
        [*CLI, "install", str(destination)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (destination / "toolkit-backup").is_dir()
    assert not (toolkit_root / "toolkit-backup").exists()


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_config_version_containerd_does_not_know_is_refused_naming_file_and_line(
    tmp_path: Path, toolkit_root: Path
) -> None:
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    config.write_text('# containerd\nroot = "/var/lib/containerd"\nversion = 7\n\n[plugins]\n')
    before = files_under(tmp_path)
    done = subprocess.run(
        [*CLI, "install"], env=env_for(config, toolkit_root), capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"gpu-operator: {config}:3: version = 7: expected 1, 2 or 3"
    ]
    assert files_under(tmp_path) == before, "nothing changed"


def test_a_config_path_whose_directory_is_missing_is_created_with_one_line_and_a_warning(
    tmp_path: Path, toolkit_root: Path
) -> None:
    config = tmp_path / "etc" / "containerdd" / "config.toml"  # a typo of containerd
    before = files_under(tmp_path)
    done = subprocess.run(
        [*CLI, "install"], env=env_for(config, toolkit_root), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert f"created {config}: no config existed there, nor its directory {config.parent}" in lines
    assert (
        f"warning: containerd reads /etc/containerd/config.toml, not {config}, unless it is "
        "started with that file: check RUNTIME_CONFIG/CONTAINERD_CONFIG"
    ) in lines
    after = files_under(tmp_path)
    config_file, backup = sorted(set(after) - set(before))
    assert config_file == "etc/containerdd/config.toml"
    assert backup.startswith("usr-local-nvidia/toolkit-backup/"), "the backup install keeps"
    assert {k: v for k, v in after.items() if k in before} == before, "nothing else changed"


def test_a_new_config_at_the_runtime_s_own_location_is_created_without_a_warning(
    tmp_path: Path, toolkit_root: Path
) -> None:
    host_etc = tmp_path / "host-etc-containerd"  # the host's /etc/containerd, not there yet
    env = env_for(
        Path("/etc/containerd/config.toml"),
        toolkit_root,
        GPU_OPERATOR_MOUNTS=f'{{"/etc/containerd": "{host_etc}"}}',
    )
    done = subprocess.run([*CLI, "install"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    config = host_etc / "config.toml"
    assert f"created {config}: no config existed there, nor its directory {host_etc}" in (
        done.stderr.splitlines()
    )
    assert "warning:" not in done.stderr
    assert config.is_file()
