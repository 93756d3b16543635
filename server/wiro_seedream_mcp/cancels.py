"""The rule for a paid task whose call ends early: only a person stops it.

A call ends before its image for many reasons that are nobody's wish to stop: a framework's
own time limit (5 s in several, shorter than an image takes), sent as ``notifications/cancelled``
with a reason such as ``timed out after 5.0s``, as "caller cancelled" from an ``asyncio.wait_for``,
or as no notification at all (an aborted HTTP request, a closed session, a host that quit, a
signal). Wiro charges a killed task for the time it ran, so stopping one saves cents and throws
the image away, and the retry pays for a second task. So a task is stopped only when a person
asks: ``kill_task``/``cancel_task`` (the viewer's Stop calls them), or, on a server set up with
``WIRO_STOP_ON_CANCEL=on`` for a host whose Stop button cancels the call, a cancel notification
that is not a time limit. Everything else keeps the task running and journaled: the retry,
``get_task`` or ``list_tasks`` delivers it (:func:`should_stop`).

The SDK applies a cancel to the handler's scope before a middleware sees the notification, so
the reason is recorded by :meth:`CancelReasons.observe` (a server middleware) and the handler,
once cancelled, waits a moment for it (:meth:`CancelReasons.reason`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.shared.dispatcher import coerce_request_id

# "timed out after 5.0s", "Request timed out", "RequestTimeout", "time-out", "timeout".
_TIME_LIMIT = re.compile(r"time[sd]?[\s_-]?out", re.IGNORECASE)
# How long a cancelled handler waits for the notification's reason to be recorded. The
# middleware runs within a few loop turns of the cancel; this bound only matters if it never does.
REASON_WAIT = 1.0
# Reasons kept for cancels of requests that are not waiting for one (already done, other tools).
_KEPT = 256


def should_stop(reason: str | None, *, stop_on_cancel: bool) -> bool:
    """Whether a call that ended with ``reason`` (None: no cancel notification came) stops its task."""
    return stop_on_cancel and reason is not None and not is_time_limit(reason)


def ended_because(reason: str | None) -> str:
    """Why a call ended, for the log."""
    if reason is None:
        return "no cancel came: the connection or session closed, or the server is stopping"
    if is_time_limit(reason):
        return f"the client's own time limit: {reason}"
    return f"cancelled: {reason or 'no reason given'}"


def is_time_limit(reason: str | None) -> bool:
    """Whether a cancel's reason says the client's own time limit ran out."""
    return bool(reason) and _TIME_LIMIT.search(reason or "") is not None


def _key(connection: object, request_id: Any) -> tuple[int, Any]:
    return id(connection), coerce_request_id(request_id)


class CancelReasons:
    """The reasons of the ``notifications/cancelled`` a server received, by request."""

    def __init__(self) -> None:
        self._reasons: OrderedDict[tuple[int, Any], str] = OrderedDict()
        self._arrived: anyio.Event | None = None  # made in the event loop, on first use

    async def observe(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Server middleware: note the reason of every cancel, then pass the message on."""
        if ctx.method == "notifications/cancelled" and isinstance(ctx.params, dict):
            request_id = ctx.params.get("requestId")
            reason = ctx.params.get("reason")
            if isinstance(request_id, str | int) and not isinstance(request_id, bool):
                text = reason if isinstance(reason, str) else ""
                self._note(_key(_connection(ctx.session), request_id), text)
        return await call_next(ctx)

    def _note(self, key: tuple[int, Any], reason: str) -> None:
        self._reasons[key] = reason[:500]
        while len(self._reasons) > _KEPT:
            self._reasons.popitem(last=False)
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    async def reason(self, ctx: Context[Any, Any]) -> str | None:
        """Why the call ``ctx`` belongs to was cancelled: the peer's reason (``""`` when it gave
        none), or None when the peer sent no cancel (stdin closed, the server is stopping, or an
        in-process caller gave up). Call it shielded, from the cancelled handler."""
        try:
            request = ctx.request_context
        except ValueError:
            return None
        outbound = getattr(request.session, "_request_outbound", None)
        requested = getattr(outbound, "cancel_requested", None)
        if not isinstance(requested, anyio.Event) or not requested.is_set():
            return None
        key = _key(_connection(request.session), request.request_id)
        with anyio.move_on_after(REASON_WAIT):
            while key not in self._reasons:
                if self._arrived is None:
                    self._arrived = anyio.Event()
                await self._arrived.wait()
        return self._reasons.pop(key, "")


def _connection(session: object) -> object:
    """What a session's messages travel on: request ids are unique within it. That is the
    connection's outbound channel (the dispatcher), the same for a request and for the cancel
    that names it; the SDK may hand the two different Connection objects for one client."""
    connection = getattr(session, "_connection", session)
    return getattr(connection, "outbound", connection)
