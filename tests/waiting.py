"""Waiting in tests for something another thread or process does, with a bound and no fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio


def until(condition: Callable[[], bool], seconds: float = 15) -> None:
    """Wait for something another process or thread does; fail if it never happens."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.01)


async def until_async(condition: Callable[[], bool], seconds: float = 15) -> None:
    """The same, from async code; the state lives in the emulator's thread, with no event to await."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)
