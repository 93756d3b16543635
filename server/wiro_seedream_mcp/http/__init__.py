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
import logging
import signal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import __version__
from ..config import Settings
from ..journal import PostgresJournal
from .auth import KeyVerifier, TeamVerifier, describe_token, hash_token, new_token, token_names
from .events import RETRY_MS, SessionEvents, SharedEvents
from .guards import OncePerWhile, SessionLimit, guarded_protocol, raise_file_limit
from .limits import RETRY_AFTER, CallLimit
from .settings import HttpSettings, is_loopback

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..app import SeedreamServer
    from ..journal import TaskJournal
    from ..state import Drain

__all__ = [
    "RETRY_AFTER",
    "HttpSettings",
    "KeyVerifier",
    "TeamVerifier",
    "build_app",
    "describe_token",
    "hash_token",
    "health",
    "new_token",
    "serve_http",
    "token_names",
]

log = logging.getLogger(__name__)

# SIGTERM to exit: the waits hand back their tasks at once, open streams get this long to close.
SHUTDOWN_GRACE = 5.0
# Idle connections are kept longer than load balancers keep theirs (60 s is common), so that a
# balancer never sends a request on a connection this server is just closing.
KEEP_ALIVE = 75


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


def server_options(http: HttpSettings, settings: Settings | None = None) -> dict[str, Any]:
    """What :func:`.app.build_server` takes to authenticate callers and seal request state."""
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.request_state import RequestStateSecurity

    options: dict[str, Any] = {}
    if http.state_keys:
        options["request_state_security"] = RequestStateSecurity(
            keys=[k.get_secret_value() for k in http.state_keys]
        )
    if http.mode == "key":
        from .credentials import CredentialCheck

        check = CredentialCheck(settings.base_url) if settings is not None else None
        options["token_verifier"] = KeyVerifier(check)
        # No authorization server: 401s say "Bearer" and carry no resource metadata pointer.
        options["auth"] = AuthSettings(
            issuer_url="https://wiro.ai", resource_server_url=None, required_scopes=[]
        )
    elif http.mode == "team":
        options["token_verifier"] = TeamVerifier(http)
        # With an issuer, the protected-resource metadata and the 401s' pointer to it tell hosts
        # where to log in; with static tokens only there is no login to point at.
        options["auth"] = AuthSettings(
            issuer_url=http.issuer or http.resource_url,
            resource_server_url=http.resource_url if http.issuer else None,
            required_scopes=list(http.scopes),
            validate_token_resource=False if http.issuer else None,  # the verifier checks the audience
        )
    return options


async def health(journal: TaskJournal, drain: Drain) -> tuple[int, dict[str, str]]:
    """``/healthz``: 200 when this replica can take calls; 503 while it drains, or while its journal
    (the PostgreSQL database replicas share) cannot be read, so a load balancer sends elsewhere.
    Wiro is never asked."""
    if drain.draining:
        return 503, {"status": "draining", "version": __version__}
    if not await journal.ready():
        return 503, {"status": "journal unavailable", "version": __version__}
    return 200, {"status": "ok", "version": __version__}


def build_app(settings: Settings, http: HttpSettings, drain: Drain | None = None) -> Starlette:
    """The ASGI app ``serve --http`` runs: MCP at ``http.path``, ``/healthz``, auth and limits."""
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from ..app import build_server
    from ..state import Drain

    drain = drain or Drain()
    http.check(settings)
    if http.mode == "key" and settings.api_key is not None:
        log.warning("WIRO_HTTP_AUTH=key: callers bring their own keys; WIRO_API_KEY is not used")
        settings = dataclasses.replace(settings, api_key=None, api_secret=None)
    server: SeedreamServer = build_server(settings, drain=drain, **server_options(http, settings))

    async def healthz(_: Request) -> Response:
        status, body = await health(server.journal, drain)
        return JSONResponse(body, status_code=status)

    server.custom_route("/healthz", methods=["GET"])(healthz)

    # Replicas keep the events in the journal's database, where any of them can resume a stream.
    journal = server.journal
    events = SharedEvents(journal.events) if isinstance(journal, PostgresJournal) else SessionEvents()
    app = server.streamable_http_app(
        streamable_http_path=http.path,
        json_response=False,
        stateless_http=http.stateless,
        max_request_body_size=http.max_body,
        transport_security=_transport_security(http),
        host=http.host,
        session_idle_timeout=float(http.session_idle),
        # Streams a client can resume after a dropped connection (sessions only: see .events).
        event_store=None if http.stateless else events,
        retry_interval=None if http.stateless else RETRY_MS,
    )
    if http.mode == "key":
        from .auth import KeyHint

        app.user_middleware.insert(0, Middleware(KeyHint))
    # Inside the auth middleware, so the caller it found is known.
    if not http.stateless:
        app.user_middleware.append(
            Middleware(
                SessionLimit,
                settings=settings,
                # Without auth (loopback only) every caller is the one person on the machine: the
                # SDK's limit on all sessions applies, not a per-caller one.
                limit=http.max_sessions if http.mode != "none" else None,
                idle=float(http.session_idle),
                shared=events if isinstance(events, SharedEvents) else None,
            )
        )
    app.user_middleware.append(
        Middleware(
            CallLimit,
            journal=server.journal,
            settings=settings,
            limit=http.max_running,
            ttl=settings.wait_timeout + 120.0,
            max_body=http.max_body,
            body_timeout=float(http.body_timeout),
        )
    )
    log.info(
        "serving MCP over streamable HTTP on %s (auth: %s, %s)",
        http.resource_url,
        http.mode,
        "stateless" if http.stateless else "sessions",
    )
    return app


def serve_http(settings: Settings, http: HttpSettings, sock: Any = None) -> None:
    """Run the app with uvicorn until SIGTERM or SIGINT: then waiting calls hand back their task
    ids at once, no new connection is taken, and the process exits within :data:`SHUTDOWN_GRACE`
    seconds plus the few it takes the answers to go out."""
    import asyncio

    import uvicorn

    from ..state import Drain

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
            # uvicorn raises the signal again once it has shut down, so the process would end as
            # killed by it (-15): a drained, orderly shutdown is a clean exit, status 0.
            self._captured_signals.clear()

    raise_file_limit()
    quiet = OncePerWhile()
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    config = uvicorn.Config(
        app,
        host=http.host,
        port=http.port,
        http=guarded_protocol(http.max_connections, float(http.head_timeout)),
        log_level="warning",
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
        timeout_keep_alive=KEEP_ALIVE,
        proxy_headers=False,
        server_header=False,
    )
    Server(config).run(sockets=[sock] if sock is not None else None)
