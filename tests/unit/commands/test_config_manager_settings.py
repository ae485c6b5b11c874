"""``gpu-operator config-manager`` (k8s-device-plugin's config-manager) takes upstream's flags
and variables through the one engine: a variable is read, a flag beats it, ``--oneshot`` is a
urfave/cli boolean (bare or ``=false``), and a bad boolean or integer is refused at start in one
line naming it, exit 1, nothing installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.commands.config_manager import settings_of
from gpu_operator.errors import ConfigError
from gpu_operator.names import DEVICE_PLUGIN_CONFIG_LABEL
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.deviceplugin_configs import configmap_volume
from helpers.in_process import run_main

WORDS = "use one of 1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"


def test_upstream_s_variables_are_read_and_the_flags_beat_them() -> None:
    env = {
        "NODE_NAME": "n1",
        "ONESHOT": "true",
        "CONFIG_FILE_SRCDIR": "/env-src",
        "CONFIG_FILE_DST": "/env-dst",
        "SEND_SIGNAL": "F",
        "SIGNAL": "15",
        "PROCESS_TO_SIGNAL": "plugin",
        "FALLBACK_STRATEGIES": "empty",
    }
    from_env = settings_of({}, env)
    assert (from_env.oneshot, from_env.config_file_srcdir, from_env.config_file_dst) == (
        True,
        "/env-src",
        "/env-dst",
    )
    assert (from_env.send_signal, from_env.signal, from_env.process_to_signal) == (
        False,
        15,
        "plugin",
    )
    flags = {"oneshot": "false", "config_file_srcdir": "/flag-src", "signal": "1"}
    from_flags = settings_of(flags, env)
    assert (from_flags.oneshot, from_flags.config_file_srcdir, from_flags.signal) == (
        False,
        "/flag-src",
        1,
    )


def test_the_defaults_are_upstream_s_send_signal_true() -> None:
    settings = settings_of({}, {"NODE_NAME": "n1", "KUBECONFIG": ""})
    assert (settings.oneshot, settings.send_signal, settings.signal) == (False, True, 1)
    assert settings.node_label == DEVICE_PLUGIN_CONFIG_LABEL
    assert settings.kubeconfig is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ONESHOT": "yes"}, f"ONESHOT='yes': not a boolean; {WORDS}"),
        ({"SEND_SIGNAL": "on"}, f"SEND_SIGNAL='on': not a boolean; {WORDS}"),
        ({"SIGNAL": "SIGHUP"}, "SIGNAL='SIGHUP': not an integer"),
    ],
)
def test_a_bad_variable_is_refused_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_of({}, {"NODE_NAME": "n1", **env})
    assert str(caught.value) == message


@pytest.fixture
def labelled(server_thread: ServerThread, client: Client) -> str:
    """The API emulator with node n1 labelled ts-4."""
    client.create(Node(metadata=ObjectMeta(name="n1", labels={DEVICE_PLUGIN_CONFIG_LABEL: "ts-4"})))
    return server_thread.url


def test_the_init_container_s_flags_install_the_labelled_config(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    labelled: str,
) -> None:
    srcdir, dst = configmap_volume(tmp_path), tmp_path / "config" / "config.yaml"
    monkeypatch.setenv("CONFIG_FILE_SRCDIR", str(tmp_path / "not-here"))
    monkeypatch.setenv("ONESHOT", "false")  # the bare flag beats it: one pass, then exit
    monkeypatch.setenv("NODE_NAME", "n1")
    ran = run_main(
        capsys,
        "config-manager",
        "--oneshot",
        "--config-file-srcdir",
        str(srcdir),
        f"--config-file-dst={dst}",
        "--server",
        labelled,
    )
    assert ran.code == 0, ran.stderr
    assert dst.read_text() == (srcdir / "ts-4").read_text()


def test_a_bad_variable_stops_it_before_anything_is_installed(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    labelled: str,
) -> None:
    srcdir, dst = configmap_volume(tmp_path), tmp_path / "config" / "config.yaml"
    for name, value in {
        "NODE_NAME": "n1",
        "ONESHOT": "yes",
        "CONFIG_FILE_SRCDIR": str(srcdir),
        "CONFIG_FILE_DST": str(dst),
    }.items():
        monkeypatch.setenv(name, value)
    ran = run_main(capsys, "config-manager", "--server", labelled)
    assert ran.code == 1
    assert ran.stderr.splitlines()[-1] == f"config-manager: ONESHOT='yes': not a boolean; {WORDS}"
    assert not dst.parent.exists()
