"""Streams that survive a dropped connection (``serve --http`` with sessions).

Every server-sent event gets an id, each stream opens with a priming event and a ``retry`` hint,
and a client that lost a stream (a phone between networks, a proxy's time-out) sends
``GET`` with ``Last-Event-ID``: it gets what it missed of that stream (a call's progress, then its
result) and then what follows.

Events are kept per session: an event id names the session it belongs to, and a ``Last-Event-ID``
from another session replays nothing (two clients both count their request ids from 1, so a
stream's id alone would mix them up). What is kept is bounded: a stream is forgotten
:data:`GRACE` seconds after its call answered, and at most :data:`MOST` events are kept in all,
the oldest dropped first.

With the journal in PostgreSQL (replicas), the events are kept there (:class:`SharedEvents`), so a
``GET`` with ``Last-Event-ID`` that reaches another replica than the session's is answered too
(:func:`resume_elsewhere`): what was kept of the stream, then each event the session's replica
goes on storing, announced by ``NOTIFY``, until the call's answer. Only the session's own caller
gets them. When the database does not answer, events are kept in the process meanwhile.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCError, JSONRPCMessage, JSONRPCResponse, jsonrpc_message_adapter
from starlette.types import Receive, Send

from .limits import send_error

if TYPE_CHECKING:
    from ..journal.pgevents import PgEvents

log = logging.getLogger(__name__)

# How long a stream's events outlive its call's answer, and how many events are kept in all.
GRACE = 300.0
MOST = 20_000
# What the priming event tells a client to wait before it reconnects, in milliseconds.
RETRY_MS = 2000


@dataclass
class EventScope:
    """One session's events (see :class:`.guards.SessionLimit`, which sets it per request): whose
    session it is, and its id once the answer that opened it named it."""

    owner: str = ""
    session: str = ""
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


# Events stored outside any session's request (none are expected): nobody's to resume.
NO_SESSION = EventScope(owner="-", session="-", token="-")  # noqa: S106 - a placeholder, not a secret
# How long a resumed stream waits for its next event before it looks in the database anyway.
LOOK_AGAIN = 2.0


def _final(message: JSONRPCMessage | None) -> bool:
    return isinstance(message, JSONRPCResponse | JSONRPCError)


class SharedEvents(EventStore):
    """The events in the journal's PostgreSQL database, for replicas (event ids ``token:row``);
    in this process (``token.n``) while the database does not answer."""

    def __init__(self, db: PgEvents, *, most: int = MOST, grace: float = GRACE) -> None:
        self.db = db
        self.most = most
        self.grace = grace
        self.local = SessionEvents(most=most, grace=grace)
        self._forgot = time.time()

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        scope = event_scope.get() or NO_SESSION
        data = None if message is None else message.model_dump_json(by_alias=True, exclude_none=True)
        now = time.time()
        try:
            row = await self.db.put(
                scope.token, scope.session, scope.owner, stream_id, data, _final(message), now
            )
            if now - self._forgot > 60:
                self._forgot = now
                await self.db.forget(now - self.grace, now - 24 * 3600, self.most)
        except Exception as exc:  # the database did not answer: the stream goes on from this process
            log.warning("stream events: the journal's database did not take one (%s); kept here", exc)
            return await self.local.store_event(stream_id, message)
        return f"{scope.token}:{row}"

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        if ":" not in last_event_id:
            return await self.local.replay_events_after(last_event_id, send_callback)
        found = await self.locate(last_event_id, event_scope.get())
        if found is None:
            return None
        token, stream, row = found
        for event, data, _ in await self.db.after(token, stream, row):
            if data is not None:
                await send_callback(EventMessage(_message(data), f"{token}:{event}"))
        return stream

    async def locate(self, event_id: EventId, scope: EventScope | None) -> tuple[str, StreamId, int] | None:
        """The session's token, stream and row of ``event_id``, when the event is the session's of
        ``scope``."""
        token, _, row = event_id.partition(":")
        if scope is None or not row.isdigit():
            return None
        try:
            found = await self.db.at(int(row))
        except Exception as exc:
            log.warning("stream events: the journal's database did not answer (%s)", exc)
            return None
        if (
            found is None
            or found.scope != token
            or found.owner != scope.owner
            or found.session != scope.session
        ):
            return None  # forgotten, or another caller's, or another session's
        return token, found.stream, int(row)


def _message(data: str) -> JSONRPCMessage:
    message: JSONRPCMessage = jsonrpc_message_adapter.validate_json(data)
    return message


async def resume_elsewhere(
    events: SharedEvents, scope: EventScope, last_id: str, receive: Receive, send: Send
) -> None:
    """Answer a ``GET`` with ``Last-Event-ID`` for a session another replica holds: the events of
    its stream after that one, then each new one as it is stored, until the call's answer (or
    :data:`GRACE` seconds with nothing new, or the client leaving)."""
    found = await events.locate(last_id, scope)
    if found is None:
        await send_error(send, 404, "not_found", "Session not found", [])
        return
    token, stream, row = found
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache, no-transform"),
        (b"mcp-session-id", scope.session.encode("latin-1")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    async with anyio.create_task_group() as group:

        async def until_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(until_gone)
        quiet_since = time.monotonic()
        ended = False
        while not ended and time.monotonic() - quiet_since < events.grace:
            try:
                fresh = await events.db.after(token, stream, row)
            except Exception as exc:  # the database went away: the client resumes again later
                log.warning("stream events: a resumed stream ends, the database did not answer (%s)", exc)
                break
            for event, data, final in fresh:
                row, quiet_since, ended = event, time.monotonic(), ended or final
                if data is not None:
                    chunk = f"event: message\r\nid: {token}:{event}\r\ndata: {data}\r\n\r\n"
                    await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
            if not ended:
                await events.db.wait(token, stream, LOOK_AGAIN)
        group.cancel_scope.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})
