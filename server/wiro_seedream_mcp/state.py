"""What every request handler can reach: settings, the Wiro client, the HTTP client, the journal."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2 as httpx
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from .config import Settings
from .journal import Journal
from .results import Delivery
from .wiro.client import WiroClient
from .wiro.signing import WiroAuth


@dataclass
class AppState:
    settings: Settings
    wiro: WiroClient | None
    http: httpx.AsyncClient
    journal: Journal
    problem: str | None = None

    @property
    def delivery(self) -> Delivery:
        return Delivery(self.http, self.settings, self.journal)

    def client(self) -> WiroClient:
        if self.wiro is None:
            raise ToolError(self.problem or self.settings.missing_credentials_message())
        return self.wiro


def state_of(ctx: Context[AppState]) -> AppState:
    state: AppState = ctx.request_context.lifespan_context
    return state


def wiro_client(http: httpx.AsyncClient, settings: Settings) -> WiroClient | None:
    """The Wiro client the settings call for; None without an API key."""
    if settings.api_key is None:
        return None
    return WiroClient(http, base_url=settings.base_url, auth=WiroAuth(settings.api_key, settings.api_secret))
