"""The main thread's wait for a stop signal.

A signal sent to the process may be delivered to any of its threads. CPython then only marks it
pending and runs the Python handler when the main thread next executes bytecode; a main thread
parked in an untimed ``Event.wait()`` never does, so a SIGTERM that lands on a worker thread
(the exporter's HTTP or sampler thread, a gRPC stream) would never stop the agent. A timed wait
returns to bytecode every ``poll_s``, which runs the handler.
"""

from __future__ import annotations

import threading

POLL_S = 0.2


def wait_for_signal(event: threading.Event, poll_s: float = POLL_S) -> None:
    """Block until ``event`` is set (by a signal handler, or any thread)."""
    while not event.wait(poll_s):
        pass
