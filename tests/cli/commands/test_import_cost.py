"""What each agent's process imports: a real process per case, its ``sys.modules`` read at exit.

An agent imports what it runs and nothing else: never the sandbox, aiohttp (nothing on a node
serves with it), lightkube only where the agent talks to the API server, gRPC only where it
speaks to the kubelet, pydantic only where a config file is parsed with it. ``--help`` of every
agent and every upstream-named executable loads none of these.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

NEVER = ("gpu_operator.sandbox", "aiohttp")
"""No agent imports these, ever."""
HEAVY = (*NEVER, "lightkube", "httpx2", "grpc", "google.protobuf", "pydantic", "pynvml", "rich")
"""Nothing ``--help`` needs."""

AGENTS = [
    "exporter",
    "device-plugin",
    "dra-driver",
    "feature-discovery",
    "validator",
    "toolkit",
    "mig-manager",
    "wait-for",
    "config-manager",
    "driver-manager",
    "node-labeler",
]
UPSTREAM = [
    "dcgm_exporter",
    "nvidia_device_plugin",
    "gpu_feature_discovery",
    "nvidia_validator",
    "nvidia_toolkit",
    "nvidia_mig_manager",
    "nvidia_mig_parted",
    "vector_add",
    "driver_manager",
    "gpu_node_labeler",
    "config_manager",
]

# Runs the CLI (or one upstream entry point) and writes the loaded modules' names at exit.
WRAPPER = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
import gpu_operator.cli as cli
entry, args = sys.argv[1], sys.argv[2:]
if entry == "main":
    cli.main(args)
else:
    sys.argv = [entry, *args]
    getattr(cli, entry)()
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update(
        GPU_OPERATOR_SIM="h200",
        GPU_OPERATOR_SIM_ROOT=str(tmp_path / "sim"),
        MODULES_OUT=str(tmp_path / "modules.json"),
        **extra,
    )
    return env


def _loaded(tmp_path: Path) -> set[str]:
    return set(json.loads((tmp_path / "modules.json").read_text()))


def modules_of(tmp_path: Path, entry: str, *args: str, **env: str) -> tuple[set[str], str]:
    """The modules a run of ``entry`` (``main`` or an upstream entry point) loaded, and its
    output (stdout, then stderr)."""
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, entry, *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        timeout=60,
        check=False,
    )
    assert (tmp_path / "modules.json").exists(), result.stderr
    return _loaded(tmp_path), result.stdout + result.stderr


def modules_while_serving(tmp_path: Path, ready: str, *args: str, **env: str) -> set[str]:
    """The modules of a long-running agent once it logged ``ready``, stopped with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, "main", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=_env(tmp_path, **env),
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if ready in line:
                break
        else:
            pytest.fail(f"{args[0]} exited before logging {ready!r}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    return _loaded(tmp_path)


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


@pytest.mark.parametrize("agent", AGENTS)
def test_an_agents_help_imports_nothing_heavy(tmp_path: Path, agent: str) -> None:
    modules, output = modules_of(tmp_path, "main", agent, "--help")
    assert imported(modules, HEAVY) == [], output
    assert f"gpu_operator.commands.{agent.replace('-', '_')}" in modules
    others = {f"gpu_operator.commands.{a.replace('-', '_')}" for a in AGENTS if a != agent}
    assert sorted(modules & others) == []


@pytest.mark.parametrize("entry", UPSTREAM)
def test_an_upstream_executables_help_imports_nothing_heavy(tmp_path: Path, entry: str) -> None:
    modules, output = modules_of(tmp_path, entry, "--help")
    assert output.startswith("Usage: gpu-operator "), output
    assert imported(modules, HEAVY) == [], output


def test_the_root_help_lists_every_command_and_imports_none(tmp_path: Path) -> None:
    modules, _ = modules_of(tmp_path, "main", "--help")
    subcommands = {m for m in modules if m.startswith("gpu_operator.commands.")}
    assert sorted(subcommands - {"gpu_operator.commands.root"}) == []  # root: the typer app


def test_the_serving_exporter_loads_no_api_client_grpc_or_config_model(tmp_path: Path) -> None:
    modules = modules_while_serving(tmp_path, "serving metrics on", "exporter", "-a", "127.0.0.1:0")
    assert "gpu_operator.exporter.serving" in modules
    unwanted = (*NEVER, "lightkube", "httpx2", "grpc", "pydantic", "yaml", "rich")
    assert imported(modules, unwanted) == []


def test_the_exporter_with_pod_attribution_loads_no_api_client(tmp_path: Path) -> None:
    modules = modules_while_serving(
        tmp_path,
        "serving metrics on",
        "exporter",
        "-a",
        "127.0.0.1:0",
        "-k",
        "--pod-resources-kubelet-socket",
        str(tmp_path / "no-kubelet.sock"),
    )
    assert imported(modules, (*NEVER, "lightkube", "httpx2", "pydantic", "rich")) == []


def test_feature_discovery_writing_a_file_loads_no_api_client_or_grpc(tmp_path: Path) -> None:
    modules, output = modules_of(
        tmp_path,
        "main",
        "feature-discovery",
        "--oneshot",
        "--output-file",
        str(tmp_path / "gfd"),
        NODE_NAME="node-1",
    )
    assert (tmp_path / "gfd").exists(), output
    assert imported(modules, (*NEVER, "lightkube", "httpx2", "grpc", "rich")) == []


def test_the_driver_validation_loads_no_api_client_or_grpc(tmp_path: Path) -> None:
    modules, output = modules_of(
        tmp_path, "nvidia_validator", "-c", "driver", "-o", str(tmp_path / "validations")
    )
    assert (tmp_path / "validations" / "driver-ready").exists(), output
    assert imported(modules, (*NEVER, "lightkube", "httpx2", "grpc", "pydantic", "rich")) == []


def test_wait_for_loads_no_api_client_nvml_or_config_model(tmp_path: Path) -> None:
    present = tmp_path / "ready"
    present.touch()
    modules, output = modules_of(tmp_path, "main", "wait-for", str(present))
    assert "gpu_operator.validator.waiting" in modules, output
    assert imported(modules, HEAVY) == []


def test_cdi_generate_loads_no_api_client_or_grpc(tmp_path: Path) -> None:
    modules, output = modules_of(
        tmp_path, "main", "toolkit", "cdi-generate", "--output", str(tmp_path / "cdi.yaml")
    )
    assert (tmp_path / "cdi.yaml").exists(), output
    assert imported(modules, (*NEVER, "lightkube", "httpx2", "grpc", "rich")) == []


def test_the_device_plugin_loads_grpc_but_no_api_client(tmp_path: Path) -> None:
    config = tmp_path / "plugin.yaml"
    config.write_text("version: v1\nflags:\n  migStrategy: sideways\n")
    modules, output = modules_of(
        tmp_path, "nvidia_device_plugin", "--config-file", str(config), KUBELET_SOCKET=""
    )
    assert "sideways" in output  # it stopped at the bad config, after loading what it runs
    assert "gpu_operator.deviceplugin.plugin" in modules
    assert imported(modules, (*NEVER, "lightkube", "httpx2", "rich")) == []


def test_the_mig_manager_talks_to_the_api_but_loads_no_sandbox(tmp_path: Path) -> None:
    modules, output = modules_of(
        tmp_path,
        "main",
        "mig-manager",
        "--kubeconfig",
        str(tmp_path / "missing-kubeconfig"),
        NODE_NAME="node-1",
    )
    assert "missing-kubeconfig" in output
    assert "gpu_operator.mig.manager" in modules
    assert imported(modules, NEVER) == []


# Issue 15: the v1 config file is read without pydantic, and YAML only when there is a file;
# the plugin's and GFD's processes read their command lines without typer and click.
CONFIG_FREE = (
    *NEVER,
    "lightkube",
    "httpx2",
    "rich",
    "pydantic",
    "pydantic_core",
    "typer",
    "click",
    "gpu_operator.commands",
)


def test_feature_discovery_without_a_config_file_loads_no_config_model_or_yaml(
    tmp_path: Path,
) -> None:
    modules, output = modules_of(
        tmp_path, "gpu_feature_discovery", "--oneshot", "--output-file", str(tmp_path / "gfd")
    )
    assert (tmp_path / "gfd").exists(), output
    assert imported(modules, (*CONFIG_FREE, "grpc", "google.protobuf", "yaml")) == []


def test_feature_discovery_with_a_config_file_reads_it_without_pydantic(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nflags:\n  migStrategy: mixed\n")
    modules, output = modules_of(
        tmp_path,
        "gpu_feature_discovery",
        "--oneshot",
        "--output-file",
        str(tmp_path / "gfd"),
        "--config-file",
        str(config),
    )
    assert "nvidia.com/mig.strategy=mixed" in (tmp_path / "gfd").read_text(), output
    assert "yaml" in modules
    assert imported(modules, (*CONFIG_FREE, "grpc")) == []


def test_the_serving_device_plugin_loads_no_config_model_or_yaml(tmp_path: Path) -> None:
    modules = modules_while_serving(
        tmp_path,
        "advertising",
        "device-plugin",
        KUBELET_SOCKET=str(tmp_path / "plugins" / "kubelet.sock"),
    )
    assert "gpu_operator.deviceplugin.supervisor" in modules
    assert "h2.connection" in modules  # gRPC is grpc_h2's, over h2 (issue 15)
    assert imported(modules, (*CONFIG_FREE, "yaml", "grpc")) == []


def test_the_device_plugin_reads_a_config_file_without_pydantic(tmp_path: Path) -> None:
    config = tmp_path / "plugin.yaml"
    config.write_text("version: v1\nflags:\n  migStrategy: sideways\n")
    modules, output = modules_of(
        tmp_path, "nvidia_device_plugin", "--config-file", str(config), KUBELET_SOCKET=""
    )
    assert f"{config}:3: flags.migStrategy: 'sideways' is not allowed" in output
    assert "yaml" in modules
    assert imported(modules, CONFIG_FREE) == []
