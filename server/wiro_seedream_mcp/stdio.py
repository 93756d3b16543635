"""Serving over stdio so that quitting never leaves a paid task running.

Two things differ from the SDK's own stdio loop:

* stdin is read on a daemon thread, so the process can always end, even while a read is blocked
  (a worker thread stuck in ``readline`` would otherwise hold the exit until stdin moved);
* SIGTERM and SIGINT (what hosts and ``uv run`` send on quit, and Ctrl-C) do what closing stdin
  does: every waiting ``generate_image`` stops its task on Wiro (Cancel or Kill, bounded in
  time), the journal records the answer, and the process exits quietly.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
from contextlib import suppress
from typing import IO, Any

import anyio
import anyio.from_thread
import anyio.lowlevel

log = logging.getLogger(__name__)


class StdinLines:
    """The lines of a binary stream as an async iterator, read on a daemon thread."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._send, self._receive = anyio.create_memory_object_stream[str](math.inf)
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), name="stdin", daemon=True).start()

    def _pump(self, token: Any) -> None:
        try:
            for raw in iter(self._stream.readline, b""):
                anyio.from_thread.run_sync(
                    self._send.send_nowait, raw.decode("utf-8", "replace"), token=token
                )
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
                "%s received: stopping the tasks still waited for, then exiting",
                signal.Signals(received).name,
            )
            scope.cancel()
            return
