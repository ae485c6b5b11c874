"""The operator's controller run in the background of an async test: started on entry, stopped
and awaited on exit, and a check that its passes have settled (the last plan wrote nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from gpu_operator.operator.controller import Controller


@asynccontextmanager
async def controller_running(controller: Controller) -> AsyncIterator[None]:
    """``controller.run`` as a task for the block; stopped and awaited when it ends."""
    stop = asyncio.Event()
    running = asyncio.create_task(controller.run(stop))
    try:
        yield
    finally:
        stop.set()
        await running


def settled(controller: Controller) -> Callable[[], bool]:
    """For ``wait_until_async``: the controller's last pass wrote nothing."""
    return lambda: controller.last_plan is not None and controller.last_plan.writes == 0
