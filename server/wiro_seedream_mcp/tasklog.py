"""Per-task lines in the client's log (MCP logging: ``logging/setLevel``, then
``notifications/message``), for the clients that show a server's log: a task started, each stage
it reaches (at ``debug``), done or failed, stopped, and warnings. A client that never set a level
gets none; one that did gets the lines at or above it. Lines name tasks, never credentials."""

from __future__ import annotations

import logging
import warnings
import weakref
from typing import Any

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import EmptyResult, LoggingLevel, SetLevelRequestParams

log = logging.getLogger(__name__)

LEVELS: tuple[LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
LOGGER = "wiro-seedream"


def client_of(session: Any) -> Any:
    """What stays the same across one client's requests: the SDK makes a session object per
    request, around the client's connection."""
    return getattr(session, "_connection", session)


class ClientLog:
    """The level each session asked for, and the lines sent at or above it."""

    def __init__(self) -> None:
        self._levels: weakref.WeakKeyDictionary[Any, LoggingLevel] = weakref.WeakKeyDictionary()

    async def set_level(self, ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
        """The ``logging/setLevel`` handler."""
        self._levels[client_of(ctx.session)] = params.level
        return EmptyResult()

    def level_of(self, session: Any) -> LoggingLevel | None:
        try:
            return self._levels.get(client_of(session))
        except TypeError:  # pragma: no cover - a client that cannot be weakly referenced
            return None

    async def say(self, ctx: Context[Any, Any] | None, level: LoggingLevel, line: str) -> None:
        """Send ``line`` to this request's client when its level lets it through; never fails the call."""
        if ctx is None:
            return
        try:
            session = ctx.request_context.session
        except (AttributeError, ValueError):
            return
        wanted = self.level_of(session)
        if wanted is None or LEVELS.index(level) < LEVELS.index(wanted):
            return
        try:
            with warnings.catch_warnings():
                # Deprecated on the 2026-07-28 wire, which has no setLevel: only older clients get here.
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await ctx.log(level, line, logger_name=LOGGER)
        except Exception:  # a client gone, a transport closed: the log is not worth a failed call
            log.debug("a log line could not be sent to the client", exc_info=True)
