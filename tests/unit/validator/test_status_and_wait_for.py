"""Status files (upstream names, driver-ready KEY=VALUE, atomic writes) and ``wait-for``: it
is woken by the file appearing (inotify), not by polling, times out naming what is missing,
and every report says the most likely reason."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.host_files import write_atomically
from gpu_operator.validator.reasons import likely_reason
from gpu_operator.validator.running import Retry, ValidationFailed, run_component
from gpu_operator.validator.status import DriverReady
from gpu_operator.validator.waiting import InotifyWaker, PollWaker, best_waker, wait_for


def test_driver_ready_is_written_as_upstreams_key_value_lines_and_read_back() -> None:
    host = DriverReady.host()
    assert host.render() == (
        "IS_HOST_DRIVER=true\nNVIDIA_DRIVER_ROOT=/\nDRIVER_ROOT_CTR_PATH=/host\n"
        "NVIDIA_DEV_ROOT=/\nDEV_ROOT_CTR_PATH=/host\n"
    )
    container = DriverReady.container()
    assert DriverReady.parse(container.render()) == container
    assert "IS_HOST_DRIVER=false\nNVIDIA_DRIVER_ROOT=/run/nvidia/driver\n" in container.render()
    with pytest.raises(ConfigError, match="driver-ready:2: expected KEY=VALUE"):
        DriverReady.parse("IS_HOST_DRIVER=true\nnonsense\n")
    with pytest.raises(ConfigError, match="missing key NVIDIA_DEV_ROOT"):
        DriverReady.parse("IS_HOST_DRIVER=true\nNVIDIA_DRIVER_ROOT=/\nDRIVER_ROOT_CTR_PATH=/h\n")


def test_a_component_deletes_its_file_first_and_writes_it_only_after_passing(
    tmp_path: Path,
) -> None:
    status = tmp_path / "toolkit-ready"
    status.write_text("stale")
    seen: list[bool] = []

    def failing() -> str:
        seen.append(status.exists())
        raise ValidationFailed("toolkit", "nvidia-smi exited 9", "NVIDIA-SMI has failed")

    with pytest.raises(ValidationFailed, match="toolkit validation failed: nvidia-smi exited 9"):
        run_component(status, failing)
    assert seen == [False], "the stale file was gone before the check ran"
    assert not status.exists()
    assert run_component(status, lambda: "ok\n") == "ok\n"
    assert status.read_text() == "ok\n"
    assert [p.name for p in tmp_path.iterdir()] == ["toolkit-ready"], "no temp file left"


def test_with_wait_retries_every_interval_until_the_check_passes(tmp_path: Path) -> None:
    attempts: list[int] = []
    slept: list[float] = []
    logged: list[str] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValidationFailed("driver", "stat .driver-ctr-ready", "missing")
        return ""

    run_component(
        tmp_path / "driver-ready",
        flaky,
        retry=Retry(with_wait=True, sleep_interval_s=5),
        log=logged.append,
        sleep=slept.append,
    )
    assert slept == [5, 5]
    assert logged[0] == "driver validation failed: stat .driver-ctr-ready: missing; retrying in 5s"


class _RecordingInotify(InotifyWaker):
    """inotify that records each wake-up by an event (``_drain`` runs only when the fd is ready)."""

    def __init__(self) -> None:
        super().__init__()
        self.events = 0

    def _drain(self) -> None:
        self.events += 1
        super()._drain()


def test_wait_for_is_woken_by_the_file_appearing_even_when_its_directory_comes_later(
    tmp_path: Path,
) -> None:
    target = tmp_path / "validations" / "toolkit-ready"
    waker = _RecordingInotify()

    def create() -> None:
        time.sleep(0.1)
        target.parent.mkdir()
        time.sleep(0.05)
        target.write_text("")

    thread = threading.Thread(target=create)
    thread.start()
    # No report and no time-out falls due within the test's time: only inotify events wake it.
    assert wait_for([target], timeout_s=600, report_every_s=600, waker=waker) == []
    thread.join()
    assert waker.events >= 1, "the directory's and the file's creation woke it"


def test_wait_for_polling_finds_the_file_without_inotify(tmp_path: Path) -> None:
    target = tmp_path / "validations" / "toolkit-ready"

    def create() -> None:
        target.parent.mkdir()
        target.write_text("")

    timer = threading.Timer(0.1, create)
    timer.start()
    assert wait_for([target], timeout_s=600, waker=PollWaker()) == []
    timer.join()


def test_wait_for_wakes_on_an_atomic_rename_as_the_validator_writes(tmp_path: Path) -> None:
    target = tmp_path / "driver-ready"
    waker = _RecordingInotify()
    timer = threading.Timer(0.1, lambda: write_atomically(target, "IS_HOST_DRIVER=true\n"))
    timer.start()
    assert wait_for([target], timeout_s=600, report_every_s=600, waker=waker) == []
    timer.join()
    assert waker.events >= 1, "the rename into place woke it"


def test_wait_for_times_out_with_the_missing_files_and_reports_the_reason(tmp_path: Path) -> None:
    (tmp_path / ".driver-ctr-ready").write_text("")
    lines: list[str] = []
    present = tmp_path / "present"
    present.write_text("")
    started = time.monotonic()
    missing = wait_for(
        [present, tmp_path / "driver-ready"], timeout_s=0.3, report_every_s=0.1, report=lines.append
    )
    assert time.monotonic() - started >= 0.3, "it waited its time-out out"
    assert missing == [tmp_path / "driver-ready"]
    assert len(lines) >= 2
    assert lines[0].startswith(f"waiting 0s for {tmp_path / 'driver-ready'}: driver-ready missing:")
    assert "driver validation has not passed" in lines[0]


def test_reasons_point_at_the_earliest_missing_step(tmp_path: Path) -> None:
    assert "the driver pod on this node is not Ready" in likely_reason(tmp_path / "driver-ready")
    (tmp_path / "driver-ready").write_text("")
    reason = likely_reason(tmp_path / "plugin-ready")
    assert reason.startswith("plugin-ready missing: toolkit-ready is missing too")
    (tmp_path / "toolkit-ready").write_text("")
    (tmp_path / "cuda-ready").write_text("")
    assert "does not advertise nvidia.com/gpu" in likely_reason(tmp_path / "plugin-ready")
    assert "does not exist" in likely_reason(tmp_path / "nowhere" / "x")


def test_the_best_waker_here_is_a_kernel_notification_not_a_poll() -> None:
    assert best_waker().name in ("watchfiles", "inotify")
