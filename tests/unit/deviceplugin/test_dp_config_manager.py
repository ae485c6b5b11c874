"""config-manager's selection of a node's named config, its install, and how it finds the
process to signal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.commands.config_manager import find_processes
from gpu_operator.deviceplugin.configselect import (
    EMPTY,
    available,
    install,
    parse_fallbacks,
    select,
)
from gpu_operator.errors import ConfigError
from gpu_operator.kube import KubeSettings, build_client
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread

LABEL = "nvidia.com/device-plugin.config"
WHERE = f"label {LABEL} on node n1"


@pytest.fixture
def srcdir(tmp_path: Path) -> Path:
    """A ConfigMap volume as the kubelet writes it: keys behind ..data links."""
    src = tmp_path / "available-configs"
    data = src / "..2026_11_27"
    data.mkdir(parents=True)
    (data / "default").write_text("version: v1\n")
    (data / "ts-4").write_text("version: v1\nsharing: {timeSlicing: {}}\n")
    (src / "..data").symlink_to(data.name)
    for key in ("default", "ts-4"):
        (src / key).symlink_to(f"..data/{key}")
    return src


def test_available_lists_the_keys_and_not_the_kubelet_links(srcdir: Path) -> None:
    assert available(srcdir) == ["default", "ts-4"]


def test_a_missing_source_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CONFIG_FILE_SRCDIR .*/nope: no such directory"):
        available(tmp_path / "nope")


def test_the_label_wins_over_the_default_and_the_default_over_fallbacks() -> None:
    names = ["a", "b", "default"]
    assert select("b", "a", ["named"], names, where=WHERE).name == "b"
    assert select("", "a", ["named"], names, where=WHERE).name == "a"
    assert select("", "", ["named"], names, where=WHERE).name == "default"


def test_fallbacks_are_tried_in_order() -> None:
    assert select("", "", ["named", "single"], ["only"], where=WHERE).name == "only"
    assert select("", "", ["single", "empty"], ["a", "b"], where=WHERE).name == EMPTY
    with pytest.raises(ConfigError, match=r"no fallback strategy \(named, single\) chose"):
        select("", "", ["named", "single"], ["a", "b"], where=WHERE)


def test_a_label_naming_a_missing_config_names_the_label_and_what_exists() -> None:
    with pytest.raises(ConfigError) as error:
        select("ts-8", "", ["named"], ["default", "ts-4"], where=WHERE)
    assert str(error.value) == (
        "label nvidia.com/device-plugin.config on node n1 asks for config 'ts-8', which the "
        "ConfigMap does not have (it has: default, ts-4)"
    )


def test_a_missing_default_config_is_an_error_too() -> None:
    with pytest.raises(ConfigError, match=r"DEFAULT_CONFIG 'x' is not in the ConfigMap"):
        select("", "x", [], ["a"], where=WHERE)


def test_unknown_fallback_strategies_are_refused() -> None:
    assert parse_fallbacks(" named, single ") == ("named", "single")
    with pytest.raises(ConfigError, match="unknown strategy newest"):
        parse_fallbacks("named,newest")


def test_install_reports_a_change_only_when_the_content_differs(
    srcdir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "config" / "config.yaml"
    ts = select("ts-4", "", [], available(srcdir), where=WHERE)
    assert install(srcdir, ts, dst) is True
    assert dst.read_text() == (srcdir / "ts-4").read_text()
    assert install(srcdir, ts, dst) is False
    assert install(srcdir, select("", "", ["empty"], [], where=WHERE), dst) is True
    assert dst.read_bytes() == b""
    assert sorted(p.name for p in dst.parent.iterdir()) == ["config.yaml"]


def test_find_processes_matches_the_executable_and_our_exec_and_filters_by_node(
    tmp_path: Path,
) -> None:
    def script(name: str) -> str:
        path = tmp_path / name
        path.write_text("import time\ntime.sleep(30)\n")
        return str(path)

    # How the processes look: our executable execs `python …/gpu-operator device-plugin`;
    # NVIDIA's image runs `nvidia-device-plugin`.
    ours = subprocess.Popen(
        [sys.executable, script("gpu-operator"), "device-plugin"],
        env={**os.environ, "NODE_NAME": "n1"},
    )
    other_node = subprocess.Popen(
        [sys.executable, script("nvidia-device-plugin")], env={**os.environ, "NODE_NAME": "n2"}
    )
    unrelated = subprocess.Popen(
        [sys.executable, script("gpu-operator"), "exporter"], env={**os.environ, "NODE_NAME": "n1"}
    )
    try:
        assert find_processes("nvidia-device-plugin", "n1") == [ours.pid]
        assert find_processes("nvidia-device-plugin", "n2") == [other_node.pid]
        assert {ours.pid, other_node.pid} <= set(find_processes("nvidia-device-plugin", ""))
    finally:
        for proc in (ours, other_node, unrelated):
            proc.kill()
            proc.wait()


@pytest.fixture
def api_url() -> Iterator[str]:
    """The API emulator with node n1 labelled ts-4 and node n2 labelled ts-8 (no such config)."""
    with ServerThread(ApiServer()) as thread:
        client = build_client(KubeSettings(server=thread.url))
        for name, config in (("n1", "ts-4"), ("n2", "ts-8")):
            client.create(Node(metadata=ObjectMeta(name=name, labels={LABEL: config})))
        client.close()
        yield thread.url


def oneshot(node: str, srcdir: Path, dst: Path, url: str) -> subprocess.CompletedProcess[str]:
    """The init container: `config-manager` with upstream's env, ONESHOT=true."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env |= {
        "NODE_NAME": node,
        "ONESHOT": "true",
        "KUBECONFIG": "",
        "CONFIG_FILE_SRCDIR": str(srcdir),
        "CONFIG_FILE_DST": str(dst),
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "config-manager",
            "--server",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_the_init_container_installs_the_labelled_config(
    api_url: str, srcdir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "config" / "config.yaml"
    result = oneshot("n1", srcdir, dst, api_url)
    assert result.returncode == 0, result.stderr
    assert dst.read_text() == (srcdir / "ts-4").read_text()


def test_the_init_container_refuses_a_label_naming_a_missing_config(
    api_url: str, srcdir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "config" / "config.yaml"
    result = oneshot("n2", srcdir, dst, api_url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "config-manager: label nvidia.com/device-plugin.config on node n2 asks for config "
        "'ts-8', which the ConfigMap does not have (it has: default, ts-4)"
    )
    assert not dst.exists()
