"""The emulated project's pieces: its clock (:class:`Timings`), its tasks and their schedule, the
requests it saw, the faults it is told to play, and how it refuses a request."""

from __future__ import annotations

import asyncio
import hashlib
import json
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .prices import DEFAULT_PRICES
from .reference import DEFAULT_KEY, DEFAULT_SECRET, Status


@dataclass(frozen=True)
class Timings:
    """Seconds a task spends in each phase."""

    queue: float = 1.0
    prepare: float = 0.5
    generate: float = 2.0
    postprocess: float = 0.5

    @classmethod
    def instant(cls, scale: float = 0.001) -> Timings:
        """Millisecond timings for tests."""
        return cls(queue=20 * scale, prepare=10 * scale, generate=40 * scale, postprocess=10 * scale)

    @property
    def total(self) -> float:
        return self.queue + self.prepare + self.generate + self.postprocess


@dataclass
class Project:
    api_key: str = DEFAULT_KEY
    api_secret: str | None = DEFAULT_SECRET
    # The model's price list, as Tool/Detail shows it and as finished tasks are charged.
    prices: tuple[dict[str, Any], ...] = field(default_factory=lambda: DEFAULT_PRICES)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    outcome: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """Make the next ``times`` requests to a path ending in ``path`` misbehave.

    Before doing any work (nothing happened, and the answer says so, more or less):
    ``"503"``; ``"429"`` (with ``Retry-After``); ``"status"`` answers ``status`` with ``body``.

    After doing the work (it took effect, but the answer is broken, so the client cannot know):
    ``"502-after"`` (an HTML gateway error); ``"html"`` (a 200 HTML page); ``"truncated"`` (the
    first half of the JSON); ``"json-500"`` (500 with a JSON error list); ``"false-bare"``
    (``result: false``, no error); ``"false-with-ids"`` (the same, still naming the task);
    ``"wrong-types"`` (the documented keys with the wrong types); ``"no-pexit"`` (the task
    records without an exit code, like the reference's example); ``"other-task"`` (a Detail,
    Kill or Cancel answer about another task); ``"trickle"`` (the real answer, one byte every
    ``delay`` seconds); ``"slow"`` (the real answer after ``delay`` seconds).

    On the CDN (``path`` ``"/0.png"``): ``"503"``, ``"trickle"``, ``"drop"`` (half the image,
    then the connection closes), ``"redirect"`` (302 to ``body``), ``"huge-dims"`` (a PNG that
    declares 12000 x 12000 pixels), ``"fake-png"`` (PNG magic, then garbage).

    On the socket (``path`` ``"/socket"``): ``"garbage"`` (junk frames first, then the real
    ones) and ``"close"`` (closed right after the subscription).
    """

    path: str
    kind: str
    times: int = 1
    retry_after: str = "0"
    delay: float = 0.0
    status: int = 500
    body: Any = None


def schedule(timings: Timings, failure: str | None) -> list[tuple[float, str]]:
    """(seconds after creation, status) for each step of the lifecycle."""
    q, p, g, pp = timings.queue, timings.prepare, timings.generate, timings.postprocess
    if failure == "error":
        return [(0.0, Status.QUEUE), (q, Status.ERROR)]
    return [
        (0.0, Status.QUEUE),
        (q, Status.ACCEPT),
        (q + p * 0.25, Status.PREPROCESS_START),
        (q + p * 0.5, Status.PREPROCESS_END),
        (q + p * 0.75, Status.ASSIGN),
        (q + p, Status.START),
        (q + p + g * 0.1, Status.OUTPUT),
        (q + p + g * 0.95, Status.OUTPUT_FULL),
        (q + p + g, Status.END),
        (q + p + g + pp * 0.5, Status.POSTPROCESS_START),
        (q + p + g + pp, Status.POSTPROCESS_END),
    ]


@dataclass
class EmulatedTask:
    id: str
    token: str
    uuid: str
    inputs: dict[str, Any]
    created: float  # monotonic
    created_wall: int
    schedule: list[tuple[float, str]]
    failure: str | None = None
    stopped: str | None = None  # "cancel" or "kill"
    stopped_at: float | None = None
    stopped_wall: int = 0
    png: Future[bytes] | None = None
    callbackurl: str = ""
    changed: asyncio.Event | None = None  # set on Kill/Cancel, for the socket
    key: str = ""  # the project it belongs to

    def status(self, now: float) -> str:
        if self.stopped is not None:
            return Status.CANCEL
        elapsed = now - self.created
        current = self.schedule[0][1]
        for offset, status in self.schedule:
            if elapsed >= offset:
                current = status
        return current

    def at(self, status: str) -> float | None:
        for offset, step in self.schedule:
            if step == status:
                return self.created + offset
        return None

    def progress(self, now: float) -> float:
        start, end = self.at(Status.START), self.at(Status.END)
        if start is None or end is None or end <= start:
            return 0.0
        return min(1.0, max(0.0, (now - start) / (end - start)))


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    """HMAC (RFC 2104) over SHA-256, built from hashlib alone."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


def error(message: str, code: int = 0) -> dict[str, Any]:
    return {"result": False, "errors": [{"code": code, "message": message}]}


class RefusedError(Exception):
    def __init__(self, message: str, code: int = 0, status: int = 200) -> None:
        super().__init__(message)
        self.body = error(message, code)
        self.status = status
