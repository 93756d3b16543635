"""Who is calling: a caller's own Wiro key as the bearer token, or a team user's OAuth access token
(a JWT checked against the issuer's JWKS) or static token (kept as a hash)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..config import ConfigError
from .limits import send_error
from .settings import HttpSettings

if TYPE_CHECKING:
    import httpx2 as httpx
    from mcp.server.auth.provider import AccessToken
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# A caller's own Wiro key or secret: what Wiro's dashboard issues, with room to spare.
_CREDENTIAL = re.compile(r"^[A-Za-z0-9._~+/=-]{8,256}$")
_JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def well_formed(token: str) -> bool:
    """Whether a bearer token has the shape of ``KEY`` or ``KEY:SECRET``."""
    key, sep, secret = token.partition(":")
    return bool(_CREDENTIAL.match(key)) and (not sep or bool(_CREDENTIAL.match(secret)))


def hash_token(token: str) -> str:
    """How a static token is kept in ``WIRO_HTTP_TOKENS``: ``sha256:`` and its hex digest."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "wsm_" + secrets.token_urlsafe(32)


class KeyVerifier:
    """Bring your own key: the bearer token is the caller's ``KEY`` or ``KEY:SECRET``. Its shape is
    checked here, then (with ``check``, as ``serve --http`` runs it) that Wiro accepts the pair,
    before anything of the caller's is read (:mod:`.credentials`)."""

    def __init__(self, check: Callable[[str, str | None], Awaitable[bool]] | None = None) -> None:
        self.check = check

    async def verify_token(self, token: str) -> AccessToken | None:
        from mcp.server.auth.provider import AccessToken

        from ..state import OWN_KEY_ISSUER

        key, _, secret = token.partition(":")
        if not well_formed(token):
            return None
        if self.check is not None and not await self.check(key, secret or None):
            return None
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
        return AccessToken(
            token=token,
            client_id=f"key-{fingerprint}",
            scopes=[],
            subject=fingerprint,
            claims={"iss": OWN_KEY_ISSUER},
        )


NO_KEY = (
    "no Wiro key was sent: send your Wiro project's API key as Authorization: Bearer KEY, or Bearer "
    "KEY:SECRET for a project with a secret"
)
NOT_ACCEPTED = (
    "Wiro did not accept this key and secret (or could not be asked just now): send your Wiro "
    "project's API key as Authorization: Bearer KEY, or Bearer KEY:SECRET for a project with a secret"
)
NOT_A_KEY = (
    "the bearer token is not a Wiro API key: send Authorization: Bearer KEY, or Bearer KEY:SECRET, "
    "each 8 to 256 letters, digits or ._~+/=- (no spaces)"
)


class KeyHint:
    """ASGI middleware for ``WIRO_HTTP_AUTH=key``: a refused request (401) says whether no key was
    sent or what was sent is not a key, instead of the same words for both."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1").strip()
        token = sent[7:].strip() if sent.lower().startswith("bearer ") else ""
        why = NO_KEY if not sent else NOT_ACCEPTED if well_formed(token) else NOT_A_KEY
        replaced = False

        async def hinted(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 401:
                replaced = True
                challenge = f'Bearer error="invalid_token", error_description="{why}"'
                await send_error(send, 401, "invalid_token", why, [(b"www-authenticate", challenge.encode())])
            elif not replaced:
                await send(message)

        await self.app(scope, receive, hinted)


@dataclass
class _Keys:
    by_kid: dict[str, Any] = field(default_factory=dict)
    fetched: float = -math.inf


class TeamVerifier:
    """Team key: a static token from ``WIRO_HTTP_TOKENS``, or an OAuth access token (a JWT) issued
    by ``WIRO_OAUTH_ISSUER`` for this server (audience), unexpired, with the required scopes."""

    # JWKS are fetched again at most this often, also when a token names a key not seen yet.
    JWKS_TTL = 300.0
    JWKS_RETRY = 30.0
    # One fetch (the issuer's metadata and its JWKS) gets this long and this many bytes a document:
    # a slow or huge answer must not hold requests or fill the memory.
    JWKS_DEADLINE = 5.0
    JWKS_MAX_BYTES = 256 * 1024

    def __init__(self, settings: HttpSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._http = http
        self._keys = _Keys()
        self._fetching: anyio.Lock | None = None

    def _static(self, token: str) -> AccessToken | None:
        from mcp.server.auth.provider import AccessToken

        digest = hashlib.sha256(token.encode()).hexdigest()
        for name, expected in self.settings.tokens:
            if hmac.compare_digest(digest, expected):
                return AccessToken(
                    token=token,
                    client_id=f"token-{name}",
                    scopes=list(self.settings.scopes),
                    subject=name,
                    claims={"iss": "WIRO_HTTP_TOKENS"},
                )
        return None

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self._static(token)
        if found is not None or self.settings.issuer is None or token.count(".") != 2:
            return found
        return await self._jwt(token)

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            from ..state import http_client

            self._http = http_client(timeout=10.0)
        return self._http

    async def _jwks_url(self) -> str:
        if self.settings.jwks_url:
            return self.settings.jwks_url
        issuer = (self.settings.issuer or "").rstrip("/")
        http = await self._client()
        for suffix in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            status, document = await self._get_json(http, issuer + suffix)
            if status == 200 and isinstance(document, dict):
                uri = document.get("jwks_uri")
                if isinstance(uri, str) and uri:
                    return uri
        raise LookupError(f"the issuer {issuer} publishes no jwks_uri")

    async def _get_json(self, http: httpx.AsyncClient, url: str) -> tuple[int, Any]:
        """A JSON document of at most :attr:`JWKS_MAX_BYTES`; ValueError past it."""
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                return response.status_code, None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.JWKS_MAX_BYTES:
                    raise ValueError(f"{url} answered more than {self.JWKS_MAX_BYTES} bytes")
        return 200, json.loads(body)

    def _due(self, now: float, refresh: bool) -> bool:
        if now - self._keys.fetched > self.JWKS_TTL:
            return True
        # A key not seen yet: the issuer may have rotated, but forged tokens with made-up kids must
        # not make a fetch each: at most one every JWKS_RETRY seconds.
        return refresh and now - self._keys.fetched > self.JWKS_RETRY

    async def _signing_key(self, kid: str | None, *, refresh: bool) -> Any:
        if self._due(time.monotonic(), refresh):
            if self._fetching is None:
                self._fetching = anyio.Lock()
            async with self._fetching:  # one fetch at a time; the others use what it found
                now = time.monotonic()
                if self._due(now, refresh):
                    await self._fetch(now)
        if kid is None and len(self._keys.by_kid) == 1:
            return next(iter(self._keys.by_kid.values()))
        return self._keys.by_kid.get(kid or "")

    async def _jwks(self) -> dict[str, Any]:
        http = await self._client()
        status, document = await self._get_json(http, await self._jwks_url())
        if status != 200 or not isinstance(document, dict):
            raise LookupError(f"the JWKS answered HTTP {status}")
        return document

    async def _fetch(self, now: float) -> None:
        import jwt

        try:
            with anyio.fail_after(self.JWKS_DEADLINE):
                document = await self._jwks()
            keys = jwt.PyJWKSet.from_dict(document)
            self._keys = _Keys({k.key_id or "": k for k in keys.keys}, now)
        except Exception as exc:  # any failure to fetch: the token cannot be checked now
            log.warning("the OAuth issuer's keys could not be fetched: %s", exc or type(exc).__name__)
            self._keys.fetched = now - self.JWKS_TTL + self.JWKS_RETRY

    async def _jwt(self, token: str) -> AccessToken | None:
        import jwt
        from mcp.server.auth.provider import AccessToken

        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return None
        key = await self._signing_key(kid, refresh=False) or await self._signing_key(kid, refresh=True)
        if key is None:
            log.info("refused an access token signed by an unknown key")
            return None
        audience = self.settings.resource_url
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=_JWT_ALGORITHMS,
                audience=[audience, audience + "/"],
                issuer=self.settings.issuer,
                leeway=30,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            log.info("refused an access token: %s", exc)
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            # Whose tasks these are comes from the subject alone: a token without one is refused,
            # never mapped to its client_id (which another user's subject could equal).
            log.info("refused an access token without a subject")
            return None
        raw_scopes = claims.get("scope") or claims.get("scp") or ""
        scopes = raw_scopes.split() if isinstance(raw_scopes, str) else [str(s) for s in raw_scopes]
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or "oauth"),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=audience,
            subject=subject,
            claims={"iss": claims["iss"]},
        )


def describe_token(name: str, token: str) -> str:
    return (
        f"Token for {name} (give it to them; it is not kept anywhere):\n  {token}\n"
        f"Add this to WIRO_HTTP_TOKENS on the server (comma-separated with the others):\n"
        f"  {name}={hash_token(token)}"
    )


def token_names(raw: Sequence[str]) -> list[str]:
    for name in raw:
        if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", name):
            raise ConfigError(f"a token name is letters, digits and ._@- (1 to 64); got {name!r}")
    return list(raw)
