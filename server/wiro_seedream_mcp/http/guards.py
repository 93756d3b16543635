"""What keeps one caller, or one client that never finishes a request, from using up the server:
connections, request heads and bodies that must arrive in time, sessions per caller, and logs
that say a repeated problem once a while instead of thousands of times.

* A connection is refused (``503`` and closed) past ``WIRO_HTTP_MAX_CONNECTIONS`` open at once,
  before the process runs out of file descriptors (the soft limit is raised to the hard one).
* A request's head must arrive within ``WIRO_HTTP_HEAD_TIMEOUT`` seconds of the connection
  opening or the last answer on it; one that sends nothing, or a byte now and then, is closed.
* A request body must arrive within ``WIRO_HTTP_BODY_TIMEOUT`` seconds (``408``, :mod:`.limits`).
* One caller holds at most ``WIRO_HTTP_MAX_SESSIONS`` sessions (``429`` past it), and a session
  no request has used for ``WIRO_HTTP_SESSION_IDLE`` seconds is closed.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..config import Settings
from .events import EventScope, SharedEvents, event_scope, resume_elsewhere
from .limits import RETRY_AFTER, owner_in, send_error

if TYPE_CHECKING:
    import asyncio

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 5\r\n"
    b"connection: close\r\ncontent-length: 42\r\n\r\nthe server has too many open connections.\n"
)


def raise_file_limit() -> None:
    """Let the process open as many files as the system allows it (the soft limit is often 1024)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            log.debug("the open-file limit stays at %s: %s", soft, exc)


def guarded_protocol(max_connections: int, head_timeout: float) -> type:
    """uvicorn's h11 protocol, with the connection cap and the head time-out."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _head_due: asyncio.TimerHandle | None = None
        _waiting_for: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("refused a connection: %d are open, the most allowed", max_connections)
                transport.write(_REFUSAL)
                transport.close()
                return
            self._expect_head()

        def _expect_head(self) -> None:
            self._stop_waiting()
            self._waiting_for = self.cycle  # a new request makes a new cycle
            self._head_due = self.loop.call_later(head_timeout, self._head_late)

        def _stop_waiting(self) -> None:
            if self._head_due is not None:
                self._head_due.cancel()
                self._head_due = None

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_due is not None and self.cycle is not self._waiting_for:
                self._stop_waiting()  # the head arrived: the request is the app's now

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._expect_head()

        def _head_late(self) -> None:
            self._head_due = None
            if self.cycle is self._waiting_for and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

    return GuardedH11Protocol


class SessionLimit:
    """ASGI middleware: at most ``limit`` open sessions per caller. A session is counted from the
    answer that opened it until a DELETE ends it or no request has used it for ``idle`` seconds
    (the SDK closes it then too)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        limit: int | None,
        idle: float,
        shared: SharedEvents | None = None,
    ) -> None:
        """``shared``: the events in the journal's database, when replicas share it: a stream of a
        session another replica holds is resumed here too (:func:`.events.resume_elsewhere`)."""
        self.app = app
        self.shared = shared
        self.settings = settings
        self.limit = limit
        self.idle = idle
        self._sessions: dict[str, OrderedDict[str, float]] = {}
        # Each session's events, for the streams a client resumes (:mod:`.events`).
        self._scopes: dict[str, EventScope] = {}

    def _open(self, owner: str, now: float) -> OrderedDict[str, float]:
        sessions = self._sessions.setdefault(owner, OrderedDict())
        while sessions and next(iter(sessions.values())) < now - self.idle:
            ended, _ = sessions.popitem(last=False)
            self._scopes.pop(ended, None)
        if not sessions:
            self._sessions.pop(owner, None)
        return sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        session = headers.get(b"mcp-session-id", b"").decode("latin-1")
        owner = owner_in(self.settings, scope)
        now = time.monotonic()
        sessions = self._open(owner, now)
        if session:
            events = self._scopes.get(session)
            last_id = headers.get(b"last-event-id", b"").decode("latin-1")
            if events is None and self.shared is not None and last_id and scope.get("method") == "GET":
                await resume_elsewhere(self.shared, EventScope(owner, session), last_id, receive, send)
                return
            if scope.get("method") == "DELETE":
                sessions.pop(session, None)
                self._scopes.pop(session, None)
            elif session in sessions:
                sessions[session] = now
                sessions.move_to_end(session)
            handed = event_scope.set(events)
            try:
                await self.app(scope, receive, send)
            finally:
                event_scope.reset(handed)
            return
        if scope.get("method") == "POST" and self.limit is not None and len(sessions) >= self.limit:
            await send_error(
                send,
                429,
                "too_many_sessions",
                f"this caller has {len(sessions)} sessions open, the most allowed; end one (DELETE) "
                f"or let one stay unused for {self.idle:g} s",
                [(b"retry-after", str(RETRY_AFTER).encode())],
            )
            return

        events = EventScope(owner)  # the session this request may open, and its tasks, store under it

        async def noted(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers") or []:
                    if name.lower() == b"mcp-session-id":
                        opened = self._sessions.setdefault(owner, OrderedDict())
                        events.session = value.decode("latin-1")
                        opened[events.session] = time.monotonic()
                        self._scopes[events.session] = events
            await send(message)

        handed = event_scope.set(events)
        try:
            await self.app(scope, receive, noted)
        finally:
            event_scope.reset(handed)


class OncePerWhile(logging.Filter):
    """Lets a message through at most ``burst`` times per ``window`` seconds (by logger and
    wording), then says how many like it were held back: a flood of the same error (a client
    that keeps the server out of file descriptors) must not fill the disk."""

    def __init__(self, burst: int = 5, window: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = time.monotonic
        self._seen: dict[tuple[str, Any], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = self.clock()
        seen = self._seen.setdefault(key, [now, 0.0, 0.0])  # window start, let through, held back
        if now - seen[0] > self.window:
            if seen[2]:
                record.msg = f"{record.msg} (and {int(seen[2])} more like it in the last {self.window:g} s)"
            seen[:] = [now, 0.0, 0.0]
        if seen[1] >= self.burst:
            seen[2] += 1
            return False
        seen[1] += 1
        if len(self._seen) > 1000:
            self._seen.clear()
        return True
