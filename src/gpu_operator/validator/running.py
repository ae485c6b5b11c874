"""The pattern every validator component follows (upstream's): delete its status file, run the
check (again every ``SLEEP_INTERVAL_SECONDS`` while ``WITH_WAIT`` is set), then write the file
atomically. A failure names the check, the command and its output."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpu_operator.errors import GpuOperatorError
from gpu_operator.toolkit.host_files import write_atomically
from gpu_operator.validator.status import remove


class ValidationFailed(GpuOperatorError):
    """A check did not pass: which check, what command ran, what it printed."""

    def __init__(self, check: str, command: str, output: str = ""):
        detail = f": {output.strip()}" if output.strip() else ""
        super().__init__(f"{check} validation failed: {command}{detail}")
        self.check = check
        self.command = command
        self.output = output


@dataclass(frozen=True)
class Retry:
    """``WITH_WAIT`` and ``SLEEP_INTERVAL_SECONDS``; ``attempts`` None = forever (upstream)."""

    with_wait: bool = False
    sleep_interval_s: float = 5.0
    attempts: int | None = None


def run_component(
    status_file: Path,
    check: Callable[[], str],
    *,
    retry: Retry = Retry(),
    log: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Delete ``status_file``, pass ``check`` (its return value is the file's content), write
    the file; the content. Without ``with_wait`` the first failure is raised."""
    remove(status_file)
    attempt = 0
    while True:
        attempt += 1
        try:
            content = check()
            break
        except ValidationFailed as failure:
            out_of_tries = retry.attempts is not None and attempt >= retry.attempts
            if not retry.with_wait or out_of_tries:
                raise
            log(f"{failure}; retrying in {retry.sleep_interval_s:g}s")
            sleep(retry.sleep_interval_s)
    write_atomically(status_file, content)
    return content
