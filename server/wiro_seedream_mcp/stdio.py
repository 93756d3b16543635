"""Serving over stdio so that quitting never hangs and never throws a paid image away.

Two things differ from the SDK's own stdio loop:

* stdin is read on a daemon thread, so the process can always end, even while a read is blocked
  (a worker thread stuck in ``readline`` would otherwise hold the exit until stdin moved);
* SIGTERM and SIGINT (what hosts and ``uv run`` send on quit, and Ctrl-C) do what closing stdin
  does: every waiting ``generate_image`` ends, its task left running on Wiro and journaled (only
  a person stops a paid task, :mod:`.cancels`), the log names it and how to pick it up, an image
  already being saved is saved, and the process exits quietly.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

log = logging.getLogger(__name__)


class StdinLines:
    """The lines of a file descriptor (stdin by default) as an async iterator, read on a daemon
    thread with plain ``os.read``: no Python-level buffer lock is held while it waits, so the
    interpreter can always shut down around it."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._send, self._receive = anyio.create_memory_object_stream[str](math.inf)
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), name="stdin", daemon=True).start()

    def _lines(self) -> Iterator[bytes]:
        pending = b""
        while chunk := os.read(self._fd, 65536):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
        if pending:
            yield pending

    def _pump(self, token: Any) -> None:
        try:
            for raw in self._lines():
                line = raw.decode("utf-8", "replace")
                anyio.from_thread.run_sync(self._send.send_nowait, line, token=token)
        except Exception:  # the loop has ended, or stdin broke: either way, no more lines
            log.debug("stdin reader stopped", exc_info=True)
        finally:
            with suppress(Exception):
                anyio.from_thread.run_sync(self._send.close, token=token)

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


async def stop_on_signal(scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` at the first SIGTERM or SIGINT (not on Windows, which has neither loop hook)."""
    if sys.platform == "win32":  # pragma: no cover
        return
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            log.warning(
                "%s received: ending the calls still waiting (their tasks keep running on Wiro), then "
                "exiting",
                signal.Signals(received).name,
            )
            scope.cancel()
            return
