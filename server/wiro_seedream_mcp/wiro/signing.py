"""Wiro request signing, as an httpx auth flow.

A Wiro project authenticates in one of two ways:

* signature: ``x-api-key``, ``x-nonce`` and ``x-signature``, where the signature is the
  lowercase hex HMAC-SHA256 of ``API_SECRET + NONCE`` keyed with the API key;
* key-only: ``x-api-key`` alone.

Nonces are millisecond timestamps that strictly increase across the whole process, so two
requests signed in the same millisecond (from concurrent tasks or threads) never share one.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Generator

import httpx2 as httpx
from pydantic import SecretStr


def signature(api_key: str, api_secret: str, nonce: str) -> str:
    """Hex HMAC-SHA256 of ``api_secret + nonce`` keyed with ``api_key``."""
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


class NonceSource:
    """Strictly increasing millisecond timestamps, safe across threads and tasks."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            now = int(self._clock() * 1000)
            self._last = max(now, self._last + 1)
            return str(self._last)


# One source for the process: clients that share a key must never share a nonce.
_process_nonces = NonceSource()


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

    def headers(self) -> dict[str, str]:
        key = self._api_key.get_secret_value()
        headers = {"x-api-key": key}
        if self._api_secret is not None:
            nonce = self._nonces()
            headers["x-nonce"] = nonce
            headers["x-signature"] = signature(key, self._api_secret.get_secret_value(), nonce)
        return headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers())
        yield request
