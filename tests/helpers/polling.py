"""The one polling helper: wait for a condition another thread or process makes true.

Tests never assert on time; a deadline only turns a hang into a failure. ``wait_until`` returns
whether the condition came true so the caller's ``assert`` names what it waited for."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

INTERVAL_S = 0.02


def wait_until(check: Callable[[], object], timeout_s: float = 10.0) -> bool:
    """Poll ``check`` until it returns something true; False once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(INTERVAL_S)
    return True


async def wait_until_async(
    check: Callable[[], object | Awaitable[object]], timeout_s: float = 10.0
) -> bool:
    """``wait_until`` on the running loop; ``check`` may be a coroutine function."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(INTERVAL_S)
