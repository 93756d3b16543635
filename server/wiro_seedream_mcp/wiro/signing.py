"""Wiro request signing, as an httpx auth flow.

A Wiro project authenticates in one of two ways:

* signature: ``x-api-key``, ``x-nonce`` and ``x-signature``, where the signature is the
  lowercase hex HMAC-SHA256 of ``API_SECRET + NONCE`` keyed with the API key;
* key-only: ``x-api-key`` alone.

Nonces are millisecond timestamps that strictly increase across this machine: two requests
signed in the same millisecond, by concurrent tasks, threads or two server processes using the
same key (a desktop app and an IDE, say), never share one.

Why timestamps and a shared counter rather than random numbers: Wiro documents the nonce as
"unix time or random integer" and its own clients send millisecond times, so a value that still
reads as the current time in milliseconds is the safest shape. Random integers of that size
would collide now and then; a counter shared through a small locked file cannot. Where the file
cannot be used, the counter is kept per process, which is still unique within the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from pathlib import Path

import anyio
import httpx2 as httpx
from pydantic import SecretStr


def signature(api_key: str, api_secret: str, nonce: str) -> str:
    """Hex HMAC-SHA256 of ``api_secret + nonce`` keyed with ``api_key``."""
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


log = logging.getLogger(__name__)


def shared_counter_path() -> Path:
    """The file every process of this user on this machine keeps the last nonce in, in a folder of
    the user's own (made owner-only on first use)."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"wiro-seedream-{user}" / "nonce"


def _private_folder(folder: Path) -> None:
    """Make ``folder`` (owner-only) or check that it is this user's own: a real folder, not a
    link, that no other user can write to. Another user could otherwise plant a link where the
    counter goes and have this process write over a file of theirs choosing."""
    if not hasattr(os, "getuid"):  # pragma: no cover - Windows keeps temp folders per user
        folder.mkdir(exist_ok=True)
        return
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    found = os.lstat(folder)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o022:
        raise PermissionError(f"{folder} is not a folder of this user's own that only it can write to")


class _SharedCounter:
    """The last nonce handed out on this machine, in a file every process locks in turn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def next_after(self, candidate: int) -> int:
        """Store and return ``max(candidate, last + 1)``; OSError when the file is unusable."""
        if self._fd is None:
            _private_folder(self.path.parent)
            # Never through a link, wherever it points.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        fd = self._fd
        with _file_lock(fd):
            os.lseek(fd, 0, os.SEEK_SET)
            raw = os.read(fd, 32)
            try:
                last = int(raw.strip() or b"0")
            except ValueError:
                last = 0
            value = max(candidate, last + 1)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b"%020d" % value)
        return value


@contextlib.contextmanager
def _file_lock(fd: int) -> Generator[None, None, None]:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


class NonceSource:
    """Strictly increasing millisecond timestamps, safe across threads and tasks.

    With ``shared`` (a file path), also across every process that uses the same file.
    """

    def __init__(self, clock: Callable[[], float] = time.time, shared: Path | None = None) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()
        self._shared = None if shared is None else _SharedCounter(shared)

    def __call__(self) -> str:
        with self._lock:
            candidate = max(int(self._clock() * 1000), self._last + 1)
            if self._shared is not None:
                try:
                    candidate = self._shared.next_after(candidate)
                except OSError as exc:
                    log.warning(
                        "nonce counter %s cannot be used (%s); nonces are unique in this process only",
                        self._shared.path,
                        exc,
                    )
                    self._shared = None
            self._last = candidate
            return str(candidate)


class SharedNonces:
    """Nonces from blocks of values that one store shared by every replica hands out in turn (the
    PostgreSQL journal): replicas on machines that share no folder never sign with the same one.

    ``allocate(size, now_ms)`` raises the store's mark to at least ``now_ms`` plus ``size`` and
    returns it: the ``size`` values up to it are this process's alone. A block is used only while
    the clock has not passed it, so nonces stay millisecond times of about now; when the store
    cannot be reached, the local source signs (unique on this machine) and that is logged once.
    """

    BLOCK = 256
    # A request is never held long for its nonce: the store gets this long, and after a failure
    # it is asked again only after RETRY seconds (meanwhile this machine's counter signs).
    DEADLINE = 1.0
    RETRY = 5.0

    def __init__(
        self,
        allocate: Callable[[int, int], Awaitable[int]],
        local: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._allocate = allocate
        self._local = local
        self._clock = clock
        self._next = 0
        self._end = 0  # the block is [_next, _end)
        self._lock: anyio.Lock | None = None
        self._retry_at = 0.0  # while the store fails: when to ask it again (0: it answers)

    def _take(self) -> str | None:
        if self._next < self._end and self._end > int(self._clock() * 1000):
            value, self._next = self._next, self._next + 1
            return str(value)
        return None

    async def next(self) -> str:
        if (value := self._take()) is not None:
            return value
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if (value := self._take()) is not None:
                return value
            if time.monotonic() < self._retry_at:
                return self._local()
            try:
                with anyio.fail_after(self.DEADLINE):
                    mark = await self._allocate(self.BLOCK, int(self._clock() * 1000))
            except Exception as exc:  # any failure of the store: sign locally, and ask it again later
                if not self._retry_at:  # said once an outage
                    log.warning(
                        "nonces cannot be shared with other replicas just now (%s): signing locally", exc
                    )
                self._retry_at = time.monotonic() + self.RETRY
                return self._local()
            self._retry_at = 0.0
            self._next, self._end = mark - self.BLOCK + 1, mark + 1
            value = self._take()
            return value if value is not None else self._local()


# One source for the process, shared with the other processes of this user: clients that share
# a key must never share a nonce.
_process_nonces = NonceSource(shared=shared_counter_path())


class _Sharing:
    """The shared source, when the journal is shared by replicas (see :func:`share_nonces`)."""

    source: SharedNonces | None = None


def share_nonces(allocate: Callable[[int, int], Awaitable[int]] | None) -> None:
    """Sign with nonces from ``allocate`` (the shared journal's), or again locally with None."""
    _Sharing.source = None if allocate is None else SharedNonces(allocate, _process_nonces)


class WiroAuth(httpx.Auth):
    """Adds Wiro's authentication headers to every request, freshly signed each time.

    Being an auth flow, it signs again on every retry, so a retried request carries a new
    nonce.
    """

    def __init__(
        self,
        api_key: SecretStr,
        api_secret: SecretStr | None = None,
        nonces: Callable[[], str] = _process_nonces,
    ) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._nonces = nonces

    def __repr__(self) -> str:
        mode = "signature" if self._api_secret is not None else "key-only"
        return f"WiroAuth(mode={mode!r})"

    def headers(self, nonce: str | None = None) -> dict[str, str]:
        """The headers for one request; ``nonce`` when one was taken already (a shared block)."""
        key = self._api_key.get_secret_value()
        headers = {"x-api-key": key}
        if self._api_secret is not None:
            nonce = nonce or self._nonces()
            headers["x-nonce"] = nonce
            headers["x-signature"] = signature(key, self._api_secret.get_secret_value(), nonce)
        return headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers())
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # Signed with this process's nonces, while replicas share them: take one from the block.
        shared = _Sharing.source if self._api_secret is not None and self._nonces is _process_nonces else None
        request.headers.update(self.headers(await shared.next() if shared is not None else None))
        yield request
