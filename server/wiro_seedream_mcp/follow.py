"""Follow one task until it ends or a deadline passes.

The poll schedule starts quick (a fast image is back in a few seconds) and settles at one
``Task/Detail`` call a second, so a task never costs more than about one call per second.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator

import anyio

from .wiro.client import WiroClient
from .wiro.models import Task

log = logging.getLogger(__name__)

# Seconds between Detail calls: quick at first, then once a second.
POLL_SCHEDULE = (0.25, 0.25, 0.5, 0.5, 0.75)
POLL_SETTLED = 1.0

OnUpdate = Callable[[Task], Awaitable[None]]


def poll_intervals() -> Iterator[float]:
    yield from POLL_SCHEDULE
    while True:
        yield POLL_SETTLED


async def follow(
    client: WiroClient,
    taskid: str,
    *,
    max_wait: float,
    on_update: OnUpdate | None = None,
) -> Task:
    """Poll ``taskid`` until it is done or ``max_wait`` seconds have passed; return its last record."""
    deadline = anyio.current_time() + max_wait
    intervals = poll_intervals()
    while True:
        task = await client.detail(taskid=taskid)
        if on_update is not None:
            await on_update(task)
        remaining = deadline - anyio.current_time()
        if task.done or remaining <= 0:
            return task
        await anyio.sleep(min(next(intervals), remaining))
