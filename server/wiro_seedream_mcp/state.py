"""What every request handler can reach: settings, the HTTP and Wiro clients, the journal.

The one HTTP client of the server is built on first use rather than at start-up: loading the
TLS certificate store costs tens of milliseconds that a host would otherwise wait for before
its first ``tools/list`` answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import httpx2 as httpx
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from . import __version__
from .cancels import CancelReasons
from .config import Settings
from .delivery import Delivery
from .journal import Journal
from .pricing import PriceBook
from .wiro.client import WiroClient
from .wiro.signing import WiroAuth

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


def wiro_client(http: httpx.AsyncClient, settings: Settings) -> WiroClient | None:
    """The Wiro client the settings call for; None without an API key."""
    if settings.api_key is None:
        return None
    return WiroClient(http, base_url=settings.base_url, auth=WiroAuth(settings.api_key, settings.api_secret))


def owner_of(settings: Settings) -> str:
    """A hash of the API's address and key (never the key itself): whose tasks these are."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return hashlib.sha256(f"{settings.base_url}\n{key}".encode()).hexdigest()[:24]


@dataclass
class AppState:
    settings: Settings
    journal: Journal
    problem: str | None = None
    cancels: CancelReasons = field(default_factory=CancelReasons)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _wiro: WiroClient | None = field(default=None, repr=False)
    _prices: PriceBook | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client()
        return self._http

    @property
    def wiro(self) -> WiroClient | None:
        """The Wiro client, or None when credentials are missing or the configuration is invalid."""
        if self._wiro is None and self.problem is None:
            self._wiro = wiro_client(self.http, self.settings)
        return self._wiro

    @property
    def prices(self) -> PriceBook:
        """The model's price, read from Wiro on first use (never at start-up)."""
        if self._prices is None:
            wiro = self.wiro
            self._prices = PriceBook(wiro.tool_detail if wiro is not None else None, self.journal)
        return self._prices

    @property
    def delivery(self) -> Delivery:
        return Delivery(self.http, self.settings, self.journal)

    @property
    def owner(self) -> str:
        """Whose tasks these are: a hash of the API's address and key (never the key itself)."""
        return owner_of(self.settings)

    def client(self) -> WiroClient:
        wiro = self.wiro
        if wiro is None:
            raise ToolError(self.problem or self.settings.missing_credentials_message())
        return wiro

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self.journal.close()


def state_of(ctx: Context[AppState]) -> AppState:
    state: AppState = ctx.request_context.lifespan_context
    return state
