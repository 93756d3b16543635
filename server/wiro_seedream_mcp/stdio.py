"""Serving over stdio so that quitting never hangs and never throws a paid image away.

Two things differ from the SDK's own stdio loop:

* stdin is read on a daemon thread, so the process can always end, even while a read is blocked
  (a worker thread stuck in ``readline`` would otherwise hold the exit until stdin moved);
* SIGTERM and SIGINT (what hosts and ``uv run`` send on quit, and Ctrl-C) do what closing stdin
  does: every waiting ``generate_image`` ends, its task left running on Wiro and journaled (only
  a person stops a paid task, :mod:`.cancels`), the log names it and how to pick it up, an image
  already being saved is saved, and the process exits quietly;
* a line that is not JSON gets a parse error (``-32700``) and one that is not a JSON-RPC message
  (a batch, which this protocol version has no place for, or an object of another shape) an
  invalid-request error (``-32600``), instead of no answer at all; the server keeps serving.
"""

from __future__ import annotations

import json
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
import mcp.types as mcp_types
from anyio.abc import ObjectSendStream
from mcp.shared.message import SessionMessage

log = logging.getLogger(__name__)


class StdinLines:
    """The lines of a file descriptor (stdin by default) as an async iterator, read on a daemon
    thread with plain ``os.read``: no Python-level buffer lock is held while it waits, so the
    interpreter can always shut down around it."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._send, self._receive = anyio.create_memory_object_stream[str](math.inf)
        self._replies: ObjectSendStream[SessionMessage] | None = None
        self._ready = anyio.Event()
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
        while True:
            try:
                line = await self._receive.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
            refusal = _refusal(line)
            if refusal is None:
                return line
            if refusal.error.code:
                await self.answer(refusal)

    def answer_with(self, replies: ObjectSendStream[SessionMessage]) -> None:
        """Where the answers to lines that are not messages go: the transport's write stream."""
        self._replies = replies
        self._ready.set()

    async def answer(self, refusal: mcp_types.JSONRPCError) -> None:
        await self._ready.wait()
        if self._replies is not None:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await self._replies.send(SessionMessage(refusal))


def _refusal(line: str) -> mcp_types.JSONRPCError | None:
    """None for a JSON-RPC message; else the error to answer it with (code 0: say nothing, for a
    blank line)."""
    if not line.strip():
        return _error(None, 0, "")
    try:
        mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError:
        pass
    else:
        return None
    try:
        parsed = json.loads(line)
    except ValueError as exc:
        return _error(None, mcp_types.PARSE_ERROR, f"Parse error: the line is not JSON ({exc})")
    if isinstance(parsed, list):
        return _error(None, mcp_types.INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported")
    found = parsed.get("id") if isinstance(parsed, dict) else None
    ident = found if isinstance(found, (str, int)) and not isinstance(found, bool) else None
    return _error(ident, mcp_types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")


def _error(ident: str | int | None, code: int, message: str) -> mcp_types.JSONRPCError:
    error = mcp_types.ErrorData(code=code, message=message)
    return mcp_types.JSONRPCError(jsonrpc="2.0", id=ident, error=error)


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
