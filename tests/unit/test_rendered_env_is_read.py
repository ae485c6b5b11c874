"""The operator's renderers and the agents agree on environment variable names: every variable
the operator sets on a container running one of our agents (the reviewed golden renderings under
``tests/data/operator``) is read by that agent's settings, given exactly that environment — so
a name spelled differently on either side (``RUNTIME_CLASS`` rendered, ``CONTAINERD_RUNTIME_CLASS``
read) fails here. The few variables read by someone else are named with who reads them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.commands import config_manager, validator
from gpu_operator.deviceplugin.settings import resolve_settings as plugin_settings
from gpu_operator.discovery.settings import resolve_settings as discovery_settings
from gpu_operator.driver.manager import ManagerSettings as DriverManagerSettings
from gpu_operator.mig.manager import ManagerSettings as MigManagerSettings
from gpu_operator.settings_engine import from_env
from gpu_operator.toolkit.settings import ToolkitSettings
from helpers import fastyaml

GOLDENS = sorted((Path(__file__).parents[1] / "data" / "operator").glob("*/expected.yaml"))
RUNTIME_READS = {
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_MIG_MONITOR_DEVICES",
}
"""Read by the NVIDIA container runtime when it creates the container, not by the agent."""
READ_ELSEWHERE = {
    "nvidia-device-plugin": {"NODE_NAME"},  # upstream sets it on every operand; unused
    "nvidia-toolkit": {"NODE_NAME"},  # likewise
}
USER_ENV = {"EXTRA_FLAG"}
"""The custom-daemonsets case's own variable (``spec.devicePlugin.env``), passed through."""


class Recording(dict[str, str]):
    """An environment that remembers every name looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def _reads(settings: Callable[[Recording], object]) -> Callable[[dict[str, str]], set[str]]:
    def read(env: dict[str, str]) -> set[str]:
        recording = Recording(env)
        settings(recording)
        return recording.read

    return read


def _validator(env: Recording) -> object:
    """nvidia-validator's flags' variables and its pods' (``VALIDATOR_IMAGE`` …)."""
    return validator.validator_settings({}, env), from_env(validator.POD_FIELDS, env)


READERS: dict[str, Callable[[dict[str, str]], set[str]]] = {
    "nvidia-device-plugin": _reads(lambda env: plugin_settings(env=env)),
    "gpu-feature-discovery": _reads(lambda env: discovery_settings(env=env)),
    "nvidia-toolkit": _reads(ToolkitSettings.from_env),
    "nvidia-mig-manager": _reads(MigManagerSettings.from_env),
    "driver-manager": _reads(DriverManagerSettings.from_env),
    "nvidia-validator": _reads(_validator),
    "config-manager": _reads(lambda env: config_manager.settings_of({}, env)),
}
"""The agent a container's command runs → the variables it reads, given its environment."""


def agent_containers() -> Iterator[tuple[str, str, str, dict[str, str]]]:
    for golden in GOLDENS:
        for obj in fastyaml.load_all(golden.read_text()):
            if not obj or obj.get("kind") != "DaemonSet":
                continue
            pod = obj["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                command = (container.get("command") or [""])[0]
                if command in READERS:
                    env = {e["name"]: e.get("value", "node-1") for e in container.get("env", [])}
                    where = f"{golden.parent.name}: {obj['metadata']['name']}/{container['name']}"
                    yield where, command, container["name"], env


CONTAINERS = list(agent_containers())


def test_every_agent_is_found_in_the_renderings() -> None:
    assert {command for _, command, _, _ in CONTAINERS} == set(READERS)


@pytest.mark.parametrize(
    ("where", "command", "name", "env"), CONTAINERS, ids=[c[0] for c in CONTAINERS]
)
def test_every_rendered_variable_is_read_by_its_agent(
    where: str, command: str, name: str, env: dict[str, str]
) -> None:
    unread = set(env) - READERS[command](env) - RUNTIME_READS - USER_ENV
    unread -= READ_ELSEWHERE.get(command, set())
    assert not unread, f"{where}: rendered but never read by {command}: {sorted(unread)}"
