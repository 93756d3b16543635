"""Bring-your-own-key callers prove their credentials before anything of theirs is read.

A caller's tasks are found by a hash of its key, so the key alone must never open them: a
``Bearer KEY:wrong`` (or a bare ``KEY`` on a project that signs) would otherwise list another
person's prompts and saved files. Before a request is let in, Wiro is asked once, with the
caller's own key and secret, about a task no project has (a signed ``Task/Detail`` that changes
nothing and costs nothing, as ``doctor`` does): "no such task" means the credentials are
accepted; a refusal means they are not. The verdict is kept briefly under a hash of the
credentials (never the credentials), so a session's requests ask Wiro once, and a refused key
cannot make the server ask Wiro again and again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from pydantic import SecretStr

if TYPE_CHECKING:
    import httpx2 as httpx

log = logging.getLogger(__name__)

# How long a verdict is kept: an accepted pair a few minutes, a refused one less (a key just
# made on the dashboard works soon after), and Wiro's silence not at all.
ACCEPTED_FOR = 300.0
REFUSED_FOR = 30.0
REMEMBERED = 10_000
# How long the check may take before the request is refused (and the next one asks again).
CHECK_DEADLINE = 10.0
# A task id no project has: asking about it is harmless.
PROBE_TASK = "0"


class CredentialCheck:
    """Whether Wiro accepts a key (and secret), asked once per pair and remembered briefly."""

    def __init__(self, base_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url
        self.clock = clock
        self._http: httpx.AsyncClient | None = None
        self._known: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._asking: dict[str, anyio.Lock] = {}

    def _digest(self, key: str, secret: str | None) -> str:
        return hashlib.sha256(f"{self.base_url}\n{key}\n{secret or ''}".encode()).hexdigest()

    def _remembered(self, digest: str) -> bool | None:
        found = self._known.get(digest)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    async def __call__(self, key: str, secret: str | None) -> bool:
        digest = self._digest(key, secret)
        known = self._remembered(digest)
        if known is not None:
            return known
        lock = self._asking.setdefault(digest, anyio.Lock())
        async with lock:  # one question at a time for the same pair; the others wait for it
            known = self._remembered(digest)
            if known is None:
                known = await self._ask(key, secret)
                if known is not None:
                    self._known[digest] = (known, self.clock() + (ACCEPTED_FOR if known else REFUSED_FOR))
                    self._known.move_to_end(digest)
                    while len(self._known) > REMEMBERED:
                        self._known.popitem(last=False)
        if not lock.locked():
            self._asking.pop(digest, None)
        return bool(known)

    async def _ask(self, key: str, secret: str | None) -> bool | None:
        """True when Wiro accepts the pair, False when it refuses it, None when it could not say."""
        from ..config import signed_client
        from ..wiro.errors import WiroAuthError, WiroError, WiroNotFoundError

        client = signed_client(
            self._client(), self.base_url, SecretStr(key), SecretStr(secret) if secret else None
        )
        try:
            with anyio.fail_after(CHECK_DEADLINE):
                await client.detail(taskid=PROBE_TASK)
        except WiroNotFoundError:
            return True
        except WiroAuthError:
            log.info("refused a caller whose credentials Wiro does not accept")
            return False
        except (WiroError, TimeoutError) as exc:
            log.warning("a caller's credentials could not be checked with Wiro (%s); refused for now", exc)
            return None
        return True  # answered as if the task existed: the credentials were accepted

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx2 as httpx

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(CHECK_DEADLINE, connect=5.0))
        return self._http
