"""What every request handler can reach: settings, the HTTP and Wiro clients, the journal, and
who is calling.

The one HTTP client of the server is built on first use rather than at start-up: loading the
TLS certificate store costs tens of milliseconds that a host would otherwise wait for before
its first ``tools/list`` answer.

Over stdio there is one caller, the person whose key the server holds, and the journal is
theirs. Over HTTP with authentication (:mod:`.http`) each request names its caller: one who
brought their own Wiro key, or a user the server's team key pays for. Each caller's tasks are
journaled under its own owner hash and only that caller reaches them.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import anyio
import httpx2 as httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from pydantic import SecretStr

from . import __version__
from .cancels import CancelReasons
from .config import Settings, signed_client, wiro_client
from .delivery import Delivery
from .journal import JournalUnavailableError, TaskJournal
from .pricing import PriceBook
from .subscriptions import TaskWatch
from .tasklog import ClientLog
from .wiro.client import WiroClient
from .wiro.models import ToolRecord

log = logging.getLogger(__name__)

USER_AGENT = f"wiro-seedream-mcp/{__version__}"
# Tasks one session may follow at once with room to spare: each holds a task socket while it
# waits, and its Run/Detail calls need connections of their own beside it.
CONCURRENT_TASKS = 128
# Idle connections kept open between bursts. The pool probes every idle connection each
# time it assigns a request, so a large idle set costs more than the reconnects it saves.
KEEPALIVE = 16


def http_client(timeout: float = 30.0) -> httpx.AsyncClient:
    """The one HTTP client of a server: pooled, sized for many concurrent tasks."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=2 * CONCURRENT_TASKS, max_keepalive_connections=KEEPALIVE),
        headers={"user-agent": USER_AGENT},
    )


def _hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def owner_of(settings: Settings) -> str:
    """A hash of the API's address and key (never the key itself): whose tasks these are."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return _hash(settings.base_url, key)


# The issuer a caller's own Wiro key is given as (see :class:`.http.KeyVerifier`).
OWN_KEY_ISSUER = "wiro-key"


@dataclass(frozen=True)
class Caller:
    """Who a request is for. ``owner`` names its tasks in the journal; a ``scoped`` caller reaches
    only the tasks journaled under its owner; ``key``/``secret`` are the caller's own credentials,
    when it brought them (held for the request, never stored or logged)."""

    owner: str
    scoped: bool = False
    key: SecretStr | None = field(default=None, repr=False)
    secret: SecretStr | None = field(default=None, repr=False)

    @property
    def own_key(self) -> bool:
        return self.key is not None


def caller_of(settings: Settings, token: AccessToken | None) -> Caller:
    """The caller an access token stands for; without one, the person whose key the server holds."""
    if token is None:
        return Caller(owner_of(settings))
    issuer = str((token.claims or {}).get("iss") or "")
    if issuer == OWN_KEY_ISSUER:
        key, _, secret = token.token.partition(":")
        return Caller(
            owner=_hash(settings.base_url, key),
            scoped=True,
            key=SecretStr(key),
            secret=SecretStr(secret) if secret else None,
        )
    team = settings.api_key.get_secret_value() if settings.api_key else ""
    # The user is the token's subject only (verifiers refuse a token without one), never its
    # client_id: a client named like another user's subject must not reach that user's tasks.
    return Caller(owner=_hash(settings.base_url, team, issuer, token.subject or ""), scoped=True)


@dataclass
class CallSlot:
    """One of a caller's slots for ``generate_image`` calls running at once (``serve --http``),
    held in the journal. It is let go while the call waits for a person to confirm the task, so
    that an unanswered question holds nothing, and taken again before the task starts."""

    journal: TaskJournal
    owner: str
    limit: int
    ttl: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    held: bool = False

    async def take(self) -> bool:
        self.held = await self.journal.take_slot(self.id, self.owner, self.limit, self.ttl)
        return self.held

    async def claim(self) -> bool:
        """:meth:`take`, where a journal that cannot count lets the call go ahead: the journal is
        named in the answer, and a paid call is not refused for it."""
        try:
            return await self.take()
        except JournalUnavailableError as exc:
            log.error("the call limit could not be counted: %s", exc)
            return True

    async def release(self) -> None:
        if self.held:
            self.held = False
            with anyio.CancelScope(shield=True):
                await self.journal.free_slot(self.id)


# The slot of the request being handled, when the server counts them (set by the HTTP layer).
call_slot: ContextVar[CallSlot | None] = ContextVar("call_slot", default=None)


class Drain:
    """Waits that end early, handing back their task, when the server is shutting down."""

    def __init__(self) -> None:
        self.draining = False
        self._scopes: set[anyio.CancelScope] = set()

    @contextmanager
    def wait(self) -> Iterator[anyio.CancelScope]:
        """A scope for one wait: cancelled (and the cancellation caught) when draining starts."""
        scope = anyio.CancelScope()
        if self.draining:
            scope.cancel()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)

    def start(self) -> None:
        self.draining = True
        for scope in list(self._scopes):
            scope.cancel()


@dataclass
class AppState:
    settings: Settings
    journal: TaskJournal
    problem: str | None = None
    cancels: CancelReasons = field(default_factory=CancelReasons)
    drain: Drain = field(default_factory=Drain)
    client_log: ClientLog = field(default_factory=ClientLog)
    watch: TaskWatch = field(default_factory=lambda: TaskWatch(InMemorySubscriptionBus()))
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _wiro: WiroClient | None = field(default=None, repr=False)
    _prices: PriceBook | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client()
        return self._http

    @property
    def caller(self) -> Caller:
        """Who the request being handled is for."""
        return caller_of(self.settings, get_access_token())

    @property
    def scope(self) -> str | None:
        """The owner whose tasks this request may reach; None when it may reach the whole journal."""
        caller = self.caller
        return caller.owner if caller.scoped else None

    @property
    def wiro(self) -> WiroClient | None:
        """The caller's Wiro client, or None when credentials are missing or the configuration is
        invalid."""
        if self.problem is not None:
            return None
        caller = self.caller
        if caller.key is not None:
            return self._own_client(caller)
        if self._wiro is None:
            self._wiro = wiro_client(self.http, self.settings)
        return self._wiro

    def _own_client(self, caller: Caller) -> WiroClient:
        """A client signing with the caller's own credentials, for this request only: they are
        never kept beyond it. It shares the one HTTP client, so making it costs next to nothing."""
        key = caller.key if caller.key is not None else SecretStr("")
        return signed_client(self.http, self.settings.base_url, key, caller.secret)

    @property
    def prices(self) -> PriceBook:
        """The model's price, read from Wiro on first use (never at start-up), with the key of the
        caller that first needs it."""
        if self._prices is None:

            async def lookup() -> ToolRecord:
                return await self.client().tool_detail()

            has_key = self.settings.api_key is not None or self.caller.own_key
            self._prices = PriceBook(lookup if has_key and self.problem is None else None, self.journal)
        return self._prices

    @property
    def delivery(self) -> Delivery:
        return Delivery(self.http, self.settings, self.journal)

    @property
    def owner(self) -> str:
        """Whose tasks these are: a hash of the API's address and the caller's key, or of the team
        key and the user (never a key itself)."""
        return self.caller.owner

    def client(self) -> WiroClient:
        wiro = self.wiro
        if wiro is None:
            raise ToolError(self.problem or self.settings.missing_credentials_message())
        return wiro

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.journal.aclose()


def state_of(ctx: Context[AppState]) -> AppState:
    state: AppState = ctx.request_context.lifespan_context
    return state
