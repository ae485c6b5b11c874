"""Settings resolved as upstream (flag > env > config file > default) with errors that name the
flag, variable or file; and the NFD feature file written atomically and left in place."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.discovery.settings import (
    DEFAULT_OUTPUT_FILE,
    DiscoverySettings,
    load_settings,
    resolve_settings,
)
from gpu_operator.discovery.writers import FeatureFileWriter, render, write_atomically
from gpu_operator.errors import ConfigError


def test_defaults_are_upstreams() -> None:
    settings = resolve_settings()

    assert settings == DiscoverySettings()
    assert settings.mig_strategy == "none"
    assert settings.sleep_interval_s == 60.0
    assert settings.output_file == DEFAULT_OUTPUT_FILE
    assert str(settings.machine_type_file) == "/sys/class/dmi/id/product_name"
    assert settings.use_node_feature_api is True
    assert settings.fail_on_init_error is True
    assert settings.namespace == "default"


def test_a_flag_beats_the_environment_which_beats_the_config_file() -> None:
    config = load_config("flags:\n  migStrategy: mixed\n  gfd:\n    oneshot: true\n", source="c")

    assert resolve_settings({}, {}, config).mig_strategy == "mixed"
    assert resolve_settings({}, {"MIG_STRATEGY": "single"}, config).mig_strategy == "single"
    assert (
        resolve_settings({}, {"GFD_MIG_STRATEGY": "none", "MIG_STRATEGY": "single"}, config)
    ).mig_strategy == "none", "GFD_MIG_STRATEGY comes first"
    flagged = resolve_settings({"mig_strategy": "single"}, {"GFD_MIG_STRATEGY": "mixed"}, config)
    assert flagged.mig_strategy == "single"
    assert flagged.oneshot is True


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("60s", 60.0, id="seconds"),
        pytest.param("1m30s", 90.0, id="minutes and seconds"),
        pytest.param("infinite", None, id="infinite"),
    ],
)
def test_the_sleep_interval_is_a_go_duration_or_infinite(text: str, seconds: float | None) -> None:
    settings = resolve_settings({}, {"GFD_SLEEP_INTERVAL": text})

    assert settings.sleep_interval_s == seconds


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"GFD_SLEEP_INTERVAL": "soon"}, "GFD_SLEEP_INTERVAL: 'soon' is not a duration"
        ),
        pytest.param({"MIG_STRATEGY": "both"}, "MIG_STRATEGY: 'both' is not one of none"),
        pytest.param(
            {"GFD_ONESHOT": "maybe"}, "GFD_ONESHOT='maybe': not a boolean; use one of 1, t"
        ),
        pytest.param({"USE_NODE_FEATURE_API": "2"}, "USE_NODE_FEATURE_API='2': not a boolean"),
    ],
)
def test_a_bad_value_is_an_error_naming_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve_settings({}, env)


def test_an_output_file_on_the_command_line_selects_the_file_writer_unless_told_otherwise() -> None:
    assert resolve_settings({"output_file": "-"}, {}).use_node_feature_api is False
    assert resolve_settings({}, {"GFD_OUTPUT_FILE": "/tmp/x"}).use_node_feature_api is False
    explicit = resolve_settings({"output_file": "-", "use_node_feature_api": True}, {})
    assert explicit.use_node_feature_api is True
    from_file = load_config("flags:\n  gfd:\n    outputFile: /x\n", source="c")
    assert resolve_settings({}, {}, from_file).use_node_feature_api is True


def test_sharing_and_resources_come_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "version: v1\nflags:\n  migStrategy: single\nsharing:\n  timeSlicing:\n"
        "    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n"
    )

    settings = load_settings({}, {"GFD_CONFIG_FILE": str(path)})

    assert settings.mig_strategy == "single"
    assert settings.sharing.timeSlicing is not None
    assert settings.sharing.timeSlicing.resources[0].replicas == 4


def test_a_number_for_sleep_interval_is_nanoseconds_as_upstream_reads_it_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("version: v1\nflags:\n  gfd:\n    sleepInterval: 60\n")

    settings = load_settings({}, {"GFD_CONFIG_FILE": str(path)})

    assert settings.sleep_interval_s == pytest.approx(60e-9)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}:4: flags.gfd.sleepInterval: the number 60 is 60ns, as upstream reads a number "
        "(nanoseconds); write a duration such as '60s' to mean seconds"
    ]


def test_a_boolean_for_sleep_interval_is_refused_naming_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^c.yaml:4: flags.gfd.sleepInterval: True is not"):
        load_config("version: v1\nflags:\n  gfd:\n    sleepInterval: true\n", source="c.yaml")


def test_a_bad_config_file_is_one_error_naming_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("version: v1\nflags:\n  migStrategy: sometimes\n")

    with pytest.raises(ConfigError) as caught:
        load_settings({}, {"CONFIG_FILE": str(path)})

    assert str(caught.value).startswith(f"{path}:3: flags.migStrategy: 'sometimes' is not allowed")


def test_a_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the config file"):
        load_settings({"config_file": str(tmp_path / "nope.yaml")}, {})


# --- the feature file -------------------------------------------------------------------------


def test_the_file_holds_sorted_key_value_lines_with_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "features.d" / "gfd"

    wrote = FeatureFileWriter(str(path)).write({"nvidia.com/b": "2", "nvidia.com/a": ""})

    assert wrote
    assert path.read_text() == "nvidia.com/a=\nnvidia.com/b=2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["gfd"], "no temp file is left behind"


def test_an_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "gfd"
    write_atomically(path, "a=1\n")
    inode = path.stat().st_ino

    assert write_atomically(path, "a=1\n") is False
    assert path.stat().st_ino == inode


def test_a_reader_never_sees_a_partial_file_while_it_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "gfd"
    versions = [render({f"nvidia.com/k{i}": str(n) for i in range(300)}) for n in range(2)]
    write_atomically(path, versions[0])
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(60):
        write_atomically(path, versions[n % 2])
    done.set()
    reader.join()

    assert seen <= set(versions)
    assert seen, "the reader ran"


def test_dash_writes_to_the_given_stream_instead_of_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    FeatureFileWriter("-").write({"nvidia.com/gpu.count": "8"})

    assert capsys.readouterr().out == "nvidia.com/gpu.count=8\n"


def test_an_unwritable_directory_is_an_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(ConfigError, match="file/gfd: cannot write the feature file"):
        write_atomically(blocker / "gfd", "a=1\n")
