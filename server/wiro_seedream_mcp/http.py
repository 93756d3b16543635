"""Serving over streamable HTTP (``serve --http``): for web hosts, connectors and teams.

Who pays, and who may call, is one of three modes (``WIRO_HTTP_AUTH``):

* ``key``: bring your own key. Each request carries the caller's Wiro credentials as
  ``Authorization: Bearer KEY`` or ``Bearer KEY:SECRET``, as Wiro's own hosted server takes them;
  the server holds no credentials and signs each call with the caller's.
* ``team``: the server holds ``WIRO_API_KEY``/``WIRO_API_SECRET`` and callers prove who they are
  with an OAuth 2.1 access token (a JWT checked against the issuer's JWKS: issuer, audience =
  this server's URL, expiry, scope), or with a token from ``WIRO_HTTP_TOKENS`` (kept as SHA-256
  hashes). The protected-resource metadata tells hosts where to log in.
* ``none``: no authentication, only on a loopback address (one person on one machine).

Either way a caller reaches only its own tasks (see :mod:`.state`). The SDK checks Host and
Origin (DNS rebinding) and caps request bodies; this module adds a per-caller limit on the
``generate_image`` calls running at once (429 with ``Retry-After``), counted in the journal so
that replicas share it, a ``/healthz`` that never touches Wiro, and a shutdown on SIGTERM that
hands every waiting call its task id before the process exits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from . import __version__
from .config import ConfigError, Settings

if TYPE_CHECKING:
    import httpx2 as httpx
    from mcp.server.auth.provider import AccessToken
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from .app import SeedreamServer
    from .journal import TaskJournal
    from .state import Drain

log = logging.getLogger(__name__)

Mode = Literal["none", "key", "team"]
MODES: tuple[Mode, ...] = ("none", "key", "team")
DEFAULT_PATH = "/mcp"
DEFAULT_PORT = 8000
# A tools/call with the longest prompt is a few KiB; nothing a client sends comes near this.
DEFAULT_MAX_BODY = 256 * 1024
DEFAULT_MAX_RUNNING = 4
DEFAULT_SCOPE = "seedream"
# What a refused caller is told to wait: about one Seedream task.
RETRY_AFTER = 5
# SIGTERM to exit: the waits hand back their tasks at once, open streams get this long to close.
SHUTDOWN_GRACE = 5.0
# A caller's own Wiro key or secret: what Wiro's dashboard issues, with room to spare.
_CREDENTIAL = re.compile(r"^[A-Za-z0-9._~+/=-]{8,256}$")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def hash_token(token: str) -> str:
    """How a static token is kept in ``WIRO_HTTP_TOKENS``: ``sha256:`` and its hex digest."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "wsm_" + secrets.token_urlsafe(32)


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def _number(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}; got {raw!r}")
    return value


def _tokens(raw: str | None) -> tuple[tuple[str, str], ...]:
    """``name=sha256:HEX`` pairs, comma-separated."""
    found = []
    for item in _list(raw):
        name, _, digest = item.partition("=")
        if not name or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ConfigError(
                "WIRO_HTTP_TOKENS must be name=sha256:<64 hex digits> pairs separated by commas (the "
                "hashes `wiro-seedream-mcp token NAME` prints), never the tokens themselves"
            )
        found.append((name, digest.removeprefix("sha256:")))
    return tuple(found)


@dataclass(frozen=True)
class HttpSettings:
    """How ``serve --http`` listens and whom it lets in; secrets never in ``repr``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    path: str = DEFAULT_PATH
    mode: Mode = "none"
    # The URL callers reach this endpoint at: the OAuth resource (audience) and the Host allowed.
    public_url: str | None = None
    issuer: str | None = None
    jwks_url: str | None = None
    scopes: tuple[str, ...] = (DEFAULT_SCOPE,)
    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body: int = DEFAULT_MAX_BODY
    max_running: int = DEFAULT_MAX_RUNNING
    stateless: bool = False
    state_keys: tuple[SecretStr, ...] = field(default=(), repr=False)

    @property
    def resource_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        path: str = DEFAULT_PATH,
        stateless: bool = False,
    ) -> HttpSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        tokens = _tokens(get("WIRO_HTTP_TOKENS"))
        issuer = get("WIRO_OAUTH_ISSUER")
        raw_mode = (get("WIRO_HTTP_AUTH") or ("team" if tokens or issuer else "none")).lower()
        if raw_mode not in MODES:
            raise ConfigError(f"WIRO_HTTP_AUTH must be one of {', '.join(MODES)}; got {raw_mode!r}")
        mode: Mode = raw_mode
        if mode == "team" and not (tokens or issuer):
            raise ConfigError(
                "WIRO_HTTP_AUTH=team needs WIRO_OAUTH_ISSUER (an OAuth authorization server) or "
                "WIRO_HTTP_TOKENS (hashed static tokens) to know who is calling"
            )
        if not path.startswith("/"):
            raise ConfigError(f"--path must start with /; got {path!r}")
        public = get("WIRO_HTTP_PUBLIC_URL")
        if public is not None and urlsplit(public).scheme not in ("http", "https"):
            raise ConfigError(
                f"WIRO_HTTP_PUBLIC_URL must be the http(s) URL of this endpoint; got {public!r}"
            )
        keys = tuple(SecretStr(k) for k in _list(get("WIRO_HTTP_STATE_KEYS")))
        if any(len(k.get_secret_value().encode()) < 32 for k in keys):
            raise ConfigError(
                "WIRO_HTTP_STATE_KEYS must be secrets of at least 32 bytes, separated by commas (the same "
                "on every replica; the first seals, all unseal)"
            )
        return cls(
            host=host,
            port=port,
            path=path,
            mode=mode,
            public_url=public,
            issuer=issuer,
            jwks_url=get("WIRO_OAUTH_JWKS_URL"),
            scopes=_list(get("WIRO_OAUTH_SCOPES")) or (DEFAULT_SCOPE,),
            tokens=tokens,
            allowed_hosts=_list(get("WIRO_HTTP_ALLOWED_HOSTS")),
            allowed_origins=_list(get("WIRO_HTTP_ALLOWED_ORIGINS")),
            max_body=_number(
                "WIRO_HTTP_MAX_BODY", get("WIRO_HTTP_MAX_BODY"), DEFAULT_MAX_BODY, 1024, 64 << 20
            ),
            max_running=_number(
                "WIRO_HTTP_MAX_RUNNING", get("WIRO_HTTP_MAX_RUNNING"), DEFAULT_MAX_RUNNING, 1, 10_000
            ),
            stateless=stateless or (get("WIRO_HTTP_STATELESS") or "").lower() in ("1", "true", "yes"),
            state_keys=keys,
        )

    def check(self, settings: Settings) -> None:
        """Refuse what must not be served, with what to do instead."""
        if self.mode == "none" and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve on {self.host} without authentication: anyone who reaches it could "
                "spend the key's money. Set WIRO_HTTP_AUTH=key (each caller sends its own Wiro key as "
                "a bearer token), or keep WIRO_API_KEY and set WIRO_OAUTH_ISSUER or WIRO_HTTP_TOKENS "
                "(WIRO_HTTP_AUTH=team); or listen on 127.0.0.1"
            )
        if self.mode == "team" and not settings.has_credentials:
            raise ConfigError(
                "WIRO_HTTP_AUTH=team pays with the server's key: set WIRO_API_KEY (and WIRO_API_SECRET)"
            )
        if self.mode == "team" and self.issuer and not self.public_url and not is_loopback(self.host):
            raise ConfigError(
                "with WIRO_OAUTH_ISSUER, set WIRO_HTTP_PUBLIC_URL to the https URL callers use for this "
                "endpoint (e.g. https://mcp.example.com/mcp): tokens must name it as their audience"
            )


# -- who is calling --------------------------------------------------------------------------


class KeyVerifier:
    """Bring your own key: the bearer token is the caller's ``KEY`` or ``KEY:SECRET``. Its shape is
    checked here; Wiro checks the key itself on the first call it signs."""

    async def verify_token(self, token: str) -> AccessToken | None:
        from mcp.server.auth.provider import AccessToken

        from .state import OWN_KEY_ISSUER

        key, sep, secret = token.partition(":")
        if not _CREDENTIAL.match(key) or (sep and not _CREDENTIAL.match(secret)):
            return None
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
        return AccessToken(
            token=token,
            client_id=f"key-{fingerprint}",
            scopes=[],
            subject=fingerprint,
            claims={"iss": OWN_KEY_ISSUER},
        )


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

    def __init__(self, settings: HttpSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._http = http
        self._keys = _Keys()

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
            from .state import http_client

            self._http = http_client(timeout=10.0)
        return self._http

    async def _jwks_url(self) -> str:
        if self.settings.jwks_url:
            return self.settings.jwks_url
        issuer = (self.settings.issuer or "").rstrip("/")
        http = await self._client()
        for suffix in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            response = await http.get(issuer + suffix)
            if response.status_code == 200:
                uri = response.json().get("jwks_uri")
                if isinstance(uri, str) and uri:
                    return uri
        raise LookupError(f"the issuer {issuer} publishes no jwks_uri")

    async def _signing_key(self, kid: str | None, *, refresh: bool) -> Any:
        import jwt

        now = time.monotonic()
        stale = now - self._keys.fetched > self.JWKS_TTL
        if stale or (refresh and now - self._keys.fetched > self.JWKS_RETRY):
            try:
                http = await self._client()
                response = await http.get(await self._jwks_url())
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json())
                self._keys = _Keys({k.key_id or "": k for k in keys.keys}, now)
            except Exception as exc:  # any failure to fetch: the token cannot be checked now
                log.warning("the OAuth issuer's keys could not be fetched: %s", exc)
                self._keys.fetched = now - self.JWKS_TTL + self.JWKS_RETRY
        if kid is None and len(self._keys.by_kid) == 1:
            return next(iter(self._keys.by_kid.values()))
        return self._keys.by_kid.get(kid or "")

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
        raw_scopes = claims.get("scope") or claims.get("scp") or ""
        scopes = raw_scopes.split() if isinstance(raw_scopes, str) else [str(s) for s in raw_scopes]
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or "oauth"),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=audience,
            subject=str(claims["sub"]),
            claims={"iss": claims["iss"]},
        )


# -- the per-caller limit --------------------------------------------------------------------


class CallLimit:
    """ASGI middleware: at most ``limit`` ``generate_image`` calls of one caller at once, counted in
    the journal (so across replicas); past it, 429 with ``Retry-After`` and nothing started."""

    def __init__(
        self, app: ASGIApp, *, journal: TaskJournal, settings: Settings, limit: int, ttl: float, max_body: int
    ):
        self.app = app
        self.journal = journal
        self.settings = settings
        self.limit = limit
        self.ttl = ttl
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive, self.max_body)
        replay = _replay(body, more, receive)
        if more or not _starts_a_task(body):
            await self.app(scope, replay, send)
            return
        from .state import caller_of

        user = scope.get("user")
        token = getattr(user, "access_token", None)
        owner = caller_of(self.settings, token).owner
        slot = uuid.uuid4().hex
        from .journal import JournalUnavailableError

        try:
            taken = await self.journal.take_slot(slot, owner, self.limit, self.ttl)
        except JournalUnavailableError as exc:
            log.error("the call limit could not be counted: %s", exc)
            taken = True  # the journal is named in the answer; a paid call is not refused for it
            slot = ""
        if not taken:
            await _refuse(send, self.limit)
            return
        try:
            await self.app(scope, replay, send)
        finally:
            if slot:
                import anyio

                with anyio.CancelScope(shield=True):
                    await self.journal.free_slot(slot)


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
    except ValueError:
        return False
    messages = message if isinstance(message, list) else [message]
    return any(
        isinstance(m, dict)
        and m.get("method") == "tools/call"
        and isinstance(m.get("params"), dict)
        and m["params"].get("name") == "generate_image"
        for m in messages
    )


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": "too_many_tasks",
            "error_description": (
                f"{limit} generate_image call(s) of yours are already running, the most this server runs "
                f"for one caller at once; try again in about {RETRY_AFTER} s"
            ),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- the app -----------------------------------------------------------------------------------


def _transport_security(http: HttpSettings) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = list(http.allowed_hosts)
    origins = list(http.allowed_origins)
    if http.public_url:
        public = urlsplit(http.public_url)
        hosts.append(public.netloc)
        origins.append(f"{public.scheme}://{public.netloc}")
    if is_loopback(http.host) or http.host in ("0.0.0.0", "::"):  # noqa: S104 - names, not a bind
        # Health checks and a TLS proxy on the same machine reach it by loopback names.
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    elif not http.public_url:
        hosts.append(f"{http.host}:{http.port}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(set(hosts)),
        allowed_origins=sorted(set(origins)),
    )


def server_options(http: HttpSettings) -> dict[str, Any]:
    """What :func:`.app.build_server` takes to authenticate callers and seal request state."""
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.request_state import RequestStateSecurity

    options: dict[str, Any] = {}
    if http.state_keys:
        options["request_state_security"] = RequestStateSecurity(
            keys=[k.get_secret_value() for k in http.state_keys]
        )
    if http.mode == "key":
        options["token_verifier"] = KeyVerifier()
        # No authorization server: 401s say "Bearer" and carry no resource metadata pointer.
        options["auth"] = AuthSettings(
            issuer_url="https://wiro.ai", resource_server_url=None, required_scopes=[]
        )
    elif http.mode == "team":
        options["token_verifier"] = TeamVerifier(http)
        options["auth"] = AuthSettings(
            issuer_url=http.issuer or http.resource_url,
            resource_server_url=http.resource_url,
            required_scopes=list(http.scopes),
            validate_token_resource=False,  # the verifier checks the audience itself
        )
    return options


def build_app(settings: Settings, http: HttpSettings, drain: Drain | None = None) -> Starlette:
    """The ASGI app ``serve --http`` runs: MCP at ``http.path``, ``/healthz``, auth and limits."""
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from .app import build_server
    from .state import Drain

    drain = drain or Drain()
    http.check(settings)
    if http.mode == "key" and settings.api_key is not None:
        log.warning("WIRO_HTTP_AUTH=key: callers bring their own keys; WIRO_API_KEY is not used")
        settings = dataclasses.replace(settings, api_key=None, api_secret=None)
    server: SeedreamServer = build_server(settings, drain=drain, **server_options(http))

    async def healthz(_: Request) -> Response:
        status = 503 if drain.draining else 200
        body = {"status": "draining" if drain.draining else "ok", "version": __version__}
        return JSONResponse(body, status_code=status)

    server.custom_route("/healthz", methods=["GET"])(healthz)

    app = server.streamable_http_app(
        streamable_http_path=http.path,
        json_response=False,
        stateless_http=http.stateless,
        max_request_body_size=http.max_body,
        transport_security=_transport_security(http),
        host=http.host,
    )
    # Innermost, so the caller the auth middleware found is known.
    app.user_middleware.append(
        Middleware(
            CallLimit,
            journal=server.journal,
            settings=settings,
            limit=http.max_running,
            ttl=settings.wait_timeout + 120.0,
            max_body=http.max_body,
        )
    )
    log.info(
        "serving MCP over streamable HTTP on %s (auth: %s, %s)",
        http.resource_url,
        http.mode,
        "stateless" if http.stateless else "sessions",
    )
    return app


def serve_http(settings: Settings, http: HttpSettings) -> None:
    """Run the app with uvicorn until SIGTERM or SIGINT: then waiting calls hand back their task
    ids at once, no new connection is taken, and the process exits within :data:`SHUTDOWN_GRACE`
    seconds plus the few it takes the answers to go out."""
    import asyncio

    import uvicorn

    from .state import Drain

    drain = Drain()
    app = build_app(settings, http, drain)

    class Server(uvicorn.Server):
        loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not drain.draining and self.loop is not None:
                log.warning(
                    "%s received: waiting calls hand back their task ids, then the server exits",
                    signal.Signals(sig).name,
                )
                self.loop.call_soon_threadsafe(drain.start)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=http.host,
        port=http.port,
        log_level="warning",
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
        proxy_headers=False,
        server_header=False,
    )
    Server(config).run()


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
