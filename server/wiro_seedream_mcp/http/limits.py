"""The per-caller limit on ``generate_image`` calls running at once, counted in the journal so that
replicas share it: past it, 429 with ``Retry-After`` and nothing is started."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import anyio

from ..config import Settings
from ..state import CallSlot, call_slot, caller_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ..journal import TaskJournal

log = logging.getLogger(__name__)

# What a refused caller is told to wait: about one Seedream task.
RETRY_AFTER = 5


class CallLimit:
    """ASGI middleware: at most ``limit`` ``generate_image`` calls of one caller at once, counted in
    the journal (so across replicas); past it, 429 with ``Retry-After`` and nothing started."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        journal: TaskJournal,
        settings: Settings,
        limit: int,
        ttl: float,
        max_body: int,
        body_timeout: float,
    ):
        self.app = app
        self.journal = journal
        self.settings = settings
        self.limit = limit
        self.ttl = ttl
        self.max_body = max_body
        # A body must arrive within this long: a client sending it a byte at a time holds nothing.
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            with anyio.fail_after(self.body_timeout):
                body, more = await _read(receive, self.max_body)
        except TimeoutError:
            late = f"the request body did not arrive within {self.body_timeout:g} s"
            await send_error(send, 408, "request_timeout", late, [])
            return
        replay = _replay(body, more, receive)
        if more or not _starts_a_task(body):
            await self.app(scope, replay, send)
            return
        slot = CallSlot(self.journal, owner_in(self.settings, scope), self.limit, self.ttl)
        if not await slot.claim():
            await _refuse(send, self.limit)
            return
        handed = call_slot.set(slot)
        try:
            await self.app(scope, replay, send)
        finally:
            call_slot.reset(handed)
            await slot.release()


def owner_in(settings: Settings, scope: Scope) -> str:
    """Whose request this is: the owner of the caller the auth middleware found (see
    :func:`..state.caller_of`)."""
    return caller_of(settings, getattr(scope.get("user"), "access_token", None)).owner


async def _read(receive: Receive, cap: int) -> tuple[bytes, bool]:
    """The request body up to ``cap`` bytes; True when there is more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > cap:
            return b"".join(chunks), True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return dict(await receive())

    return replay


def _starts_a_task(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past any real message
        return False
    messages = message if isinstance(message, list) else [message]
    return any(
        isinstance(m, dict)
        and m.get("method") == "tools/call"
        and isinstance(m.get("params"), dict)
        and m["params"].get("name") == "generate_image"
        for m in messages
    )


async def send_error(
    send: Send, status: int, error: str, description: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """A whole JSON error response (``error``, ``error_description``), as OAuth errors are given."""
    body = json.dumps({"error": error, "error_description": description}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, limit: int) -> None:
    await send_error(
        send,
        429,
        "too_many_tasks",
        f"{limit} generate_image call(s) of yours are already running, the most this server runs "
        f"for one caller at once; try again in about {RETRY_AFTER} s",
        [(b"retry-after", str(RETRY_AFTER).encode())],
    )
