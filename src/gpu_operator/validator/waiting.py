"""Wait for files to exist, waking within milliseconds of their creation.

Three ways to wake, best first: ``watchfiles`` (if installed), Linux inotify through ctypes,
else a 50 ms poll. Every ``report_every_s`` seconds the caller's ``report`` hears what is
still missing and the most likely reason (``reasons.likely_reason``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from gpu_operator.validator.reasons import likely_reason

POLL_INTERVAL_S = 0.05

_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_MASK = _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE_SELF | _IN_MOVE_SELF


class Waker(Protocol):
    """Blocks until something may have changed under the watched paths, or ``timeout_s``."""

    name: str

    def arm(self, paths: Sequence[Path]) -> None: ...

    def wait(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


def _nearest_existing(path: Path) -> Path:
    """The file's directory, or its nearest ancestor that exists (to see the dir appear)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


class PollWaker:
    name = "poll"

    def arm(self, paths: Sequence[Path]) -> None:
        pass

    def wait(self, timeout_s: float) -> None:
        time.sleep(max(0.0, min(timeout_s, POLL_INTERVAL_S)))

    def close(self) -> None:
        pass


class InotifyWaker:
    """Linux inotify via libc: one fd, a watch on each missing file's nearest existing dir."""

    name = "inotify"

    def __init__(self) -> None:
        libc_name = ctypes.util.find_library("c") or "libc.so.6"
        self._libc: Any = ctypes.CDLL(libc_name, use_errno=True)
        self._fd = int(self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._watched: dict[Path, int] = {}

    def arm(self, paths: Sequence[Path]) -> None:
        wanted = {_nearest_existing(p) for p in paths}
        for directory in wanted - set(self._watched):
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK | _IN_ONLYDIR)
            if wd >= 0:
                self._watched[directory] = int(wd)
            elif ctypes.get_errno() not in (errno.ENOENT, errno.ENOTDIR):
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        for directory in set(self._watched) - wanted:
            self._libc.inotify_rm_watch(self._fd, self._watched.pop(directory))

    def wait(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout_s))
        if ready:
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                if _mask & (_IN_DELETE_SELF | _IN_MOVE_SELF):
                    self._watched = {d: w for d, w in self._watched.items() if w != wd}
                offset += 16 + length

    def close(self) -> None:
        os.close(self._fd)


class WatchfilesWaker:
    """``watchfiles`` (Rust notify) when it is installed."""

    name = "watchfiles"

    def __init__(self) -> None:
        import watchfiles  # type: ignore[import-not-found,unused-ignore]

        self._watchfiles: Any = watchfiles
        self._dirs: list[Path] = []

    def arm(self, paths: Sequence[Path]) -> None:
        self._dirs = sorted({_nearest_existing(p) for p in paths})

    def wait(self, timeout_s: float) -> None:
        for _changes in self._watchfiles.watch(
            *self._dirs,
            recursive=False,
            rust_timeout=max(1, int(timeout_s * 1000)),
            yield_on_timeout=True,
            debounce=0,
            step=1,
        ):
            return

    def close(self) -> None:
        pass


def best_waker() -> Waker:
    """watchfiles if importable, else inotify, else polling."""
    try:
        return WatchfilesWaker()
    except ImportError:
        pass
    try:
        return InotifyWaker()
    except (OSError, AttributeError):
        return PollWaker()


def wait_for(
    paths: Sequence[Path],
    *,
    timeout_s: float | None = None,
    report_every_s: float = 30.0,
    report: Callable[[str], None] = lambda line: None,
    waker: Waker | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Path]:
    """Block until every path exists or ``timeout_s`` passes; the paths still missing."""
    own = waker is None
    waker = waker or best_waker()
    start = clock()
    next_report = start + report_every_s
    try:
        while True:
            missing = [p for p in paths if not p.exists()]
            if not missing:
                return []
            now = clock()
            if timeout_s is not None and now - start >= timeout_s:
                return missing
            if now >= next_report:
                waited = int(now - start)
                for path in missing:
                    report(f"waiting {waited}s for {path}: {likely_reason(path)}")
                next_report = now + report_every_s
            waker.arm(missing)
            if all(p.exists() for p in missing):
                continue
            deadline = next_report if timeout_s is None else min(next_report, start + timeout_s)
            waker.wait(deadline - clock())
    finally:
        if own:
            waker.close()
