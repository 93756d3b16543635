"""Streams that survive a dropped connection (``serve --http`` with sessions).

Every server-sent event gets an id, each stream opens with a priming event and a ``retry`` hint,
and a client that lost a stream (a phone between networks, a proxy's time-out) sends
``GET`` with ``Last-Event-ID``: it gets what it missed of that stream (a call's progress, then its
result) and then what follows.

Events are kept per session: an event id names the session it belongs to, and a ``Last-Event-ID``
from another session replays nothing (two clients both count their request ids from 1, so a
stream's id alone would mix them up). What is kept is bounded: a stream is forgotten
:data:`GRACE` seconds after its call answered, and at most :data:`MOST` events are kept in all,
the oldest dropped first. The events live in this process: a client resuming must reach the
same replica (as its session already must).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCError, JSONRPCMessage, JSONRPCResponse

# How long a stream's events outlive its call's answer, and how many events are kept in all.
GRACE = 300.0
MOST = 20_000
# What the priming event tells a client to wait before it reconnects, in milliseconds.
RETRY_MS = 2000


@dataclass(frozen=True)
class EventScope:
    """One session's events (see :class:`.guards.SessionLimit`, which sets it per request)."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(9))


# The session of the request (or the session's own tasks) being served.
event_scope: ContextVar[EventScope | None] = ContextVar("event_scope", default=None)


@dataclass
class _Event:
    scope: str
    stream: StreamId
    message: JSONRPCMessage | None


class SessionEvents(EventStore):
    def __init__(self, *, most: int = MOST, grace: float = GRACE) -> None:
        self.most = most
        self.grace = grace
        self._events: OrderedDict[EventId, _Event] = OrderedDict()
        self._ended: dict[tuple[str, StreamId], float] = {}
        self._count = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        scope = event_scope.get()
        token = scope.token if scope is not None else "-"
        event_id = f"{token}.{next(self._count)}"
        self._events[event_id] = _Event(token, stream_id, message)
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self._ended[(token, stream_id)] = time.monotonic()
        self._forget()
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        scope = event_scope.get()
        last = self._events.get(last_event_id)
        if last is None or scope is None or last.scope != scope.token:
            return None  # unknown, forgotten, or another session's
        after = False
        for event_id, event in list(self._events.items()):
            if event_id == last_event_id:
                after = True
                continue
            same = event.scope == last.scope and event.stream == last.stream
            if after and same and event.message is not None:
                await send_callback(EventMessage(event.message, event_id))
        return last.stream

    def _forget(self) -> None:
        now = time.monotonic()
        gone = {key for key, ended in self._ended.items() if now - ended > self.grace}
        if gone:
            for event_id in [i for i, e in self._events.items() if (e.scope, e.stream) in gone]:
                del self._events[event_id]
            for key in gone:
                del self._ended[key]
        while len(self._events) > self.most:
            self._events.popitem(last=False)
