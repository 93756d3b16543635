"""The MCP server: one MCPServer, its lifespan, and the registration of the tools.

The tools themselves live in :mod:`.tools` (one module per family); they stay thin: check the
input, call the Wiro client, hand the task to :mod:`.results`. Waiting lives in :mod:`.follow`,
the API in :mod:`.wiro`, the task journal in :mod:`.journal`, resources and prompts in
:mod:`.catalog`, the argument rule and its one-line refusals in :mod:`.arguments`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    EmptyResult,
    GetPromptResult,
    Icon,
    ImageContent,
    InputRequiredResult,
    ResourceLink,
    SetLevelRequestParams,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    TextContent,
    ToolAnnotations,
    UnsubscribeRequestParams,
)
from pydantic import ValidationError

from . import __version__
from .arguments import one_line, publish_nullable, unknown_argument, unset_blanks
from .cancels import CancelReasons
from .catalog import register_catalog
from .completions import register_completions
from .config import ConfigError, Settings
from .journal import PostgresJournal, TaskJournal, open_journal
from .state import AppState, Drain
from .stdio import StdinLines, stop_on_signal
from .subscriptions import TaskWatch, taskid_of
from .tasklog import ClientLog
from .tools import generate, listing, spend, tasks
from .tools.common import journal_entry, reach
from .wiro.signing import share_nonces

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Makes images from text with ByteDance Seedream 3.0 on Wiro.ai. Each generate_image call starts "
    "one paid Wiro task and waits for it, reporting progress; the result shows a small preview and "
    "links the image (a public URL kept for a limited time, and a saved file when the server is set "
    "up to save). If the wait ends before the image is ready, the result gives the task id: call "
    "get_task with it and wait instead of generating again. kill_task stops a running task, "
    "cancel_task removes a queued one. list_tasks shows recent tasks, also after a restart."
)

# Hosts refuse tool results over about 1 MB; an answer is kept well below that.
MAX_ANSWER_BYTES = 900_000
# The longest refusal passed on, on one line.
MAX_ERROR_CHARS = 2_000


class SeedreamServer(MCPServer[AppState]):
    """MCPServer with this project's argument rule (see :mod:`.arguments`) applied to every tool:
    optional arguments are published accepting ``null``, ``null``/``""`` count as unset, every
    refusal is one line, journal problems are named on every answer, and no answer outgrows the
    hosts' result limit."""

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        super().add_tool(fn, name, title, description, annotations, icons, meta, structured_output)
        tool = self._tool_manager.get_tool(name or fn.__name__)
        if tool is not None:
            tool.parameters = publish_nullable(tool.parameters)

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Any = None
    ) -> GetPromptResult | InputRequiredResult:
        # An unknown name is an invalid parameter (-32602), as the spec has it, naming the prompts
        # there are; the SDK would answer it as an internal error.
        if self._prompt_manager.get_prompt(name) is None:
            known = ", ".join(prompt.name for prompt in self._prompt_manager.list_prompts()) or "none"
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {name!r} (the prompts are: {known})")
        return await super().get_prompt(name, arguments, context)

    def serve_logging(self, client_log: ClientLog) -> None:
        """Answer ``logging/setLevel`` (which declares the logging capability)."""
        lowlevel = self._lowlevel_server
        lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, client_log.set_level)

    def serve_subscriptions(self, watch: TaskWatch) -> None:
        """Answer ``resources/subscribe`` and ``resources/unsubscribe`` (which declares the
        capability): task updates for the hosts that show tasks (:mod:`.subscriptions`)."""

        async def watched(state: AppState, uri: str) -> None:
            """Refuse another caller's task; follow the caller's own that no call follows."""
            taskid = taskid_of(uri)
            if taskid is not None:
                await reach(state, taskid)
                entry = await journal_entry(state.journal, taskid, owner=state.scope)
                if entry is not None:
                    watch.follow(entry.as_task())

        async def subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
            uri = str(params.uri)
            await watched(ctx.lifespan_context, uri)
            if taskid_of(uri) is not None:
                watch.add(uri, ctx.session)
            return EmptyResult()

        listen = ListenHandler(watch.bus)

        async def listen_to_own(
            ctx: Any, params: SubscriptionsListenRequestParams
        ) -> SubscriptionsListenResult:
            """``subscriptions/listen`` (2026-07-28) for the caller's own tasks only: a task of
            someone else's is left out of what the stream honours (the acknowledgement says so)."""
            wanted = params.notifications.resource_subscriptions or []
            own: list[str] = []
            for uri in wanted:
                try:
                    await watched(ctx.lifespan_context, uri)
                except ToolError:
                    continue
                own.append(uri)
            if len(own) != len(wanted):
                honoured = params.notifications.model_copy(update={"resource_subscriptions": own or None})
                params = params.model_copy(update={"notifications": honoured})
            return await listen(ctx, params)

        async def unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
            watch.remove(str(params.uri), ctx.session)
            return EmptyResult()

        lowlevel = self._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
        lowlevel.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, listen_to_own)

    # Tools whose answers go to the MCP App's view, not to the model: not cut to the hosts' limit.
    for_view_only: frozenset[str] = frozenset()
    # The task journal its tools write to (set by build_server).
    journal: TaskJournal

    def stamp(self, names: tuple[str, ...], meta: dict[str, Any]) -> None:
        """Add ``meta`` to these tools' ``_meta`` (the MCP App's ``ui.resourceUri``)."""
        for name in names:
            tool = self._tool_manager.get_tool(name)
            if tool is None:
                raise ValueError(f"no tool {name!r} to stamp")
            tool.meta = {**(tool.meta or {}), **meta}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._tool_manager.get_tool(name)
        schema = tool.parameters if tool is not None else {}
        refused = unknown_argument(name, arguments, schema) if tool is not None else None
        if refused is not None:
            raise ToolError(refused)
        try:
            result = await super().call_tool(name, unset_blanks(arguments, schema), context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(_line(one_line(cause, schema))) from cause
            message = str(exc).removeprefix(f"Error executing tool {name}: ")
            raise ToolError(_line(message)) from cause
        if isinstance(result, CallToolResult) and context is not None:
            _add_journal_warnings(result, context)
            _drop_links_if_unwanted(result, context)
            if name not in self.for_view_only:
                _fit(result)
        return result

    async def run_stdio_async(self) -> None:
        """Serve over stdio until stdin closes or SIGTERM/SIGINT comes (see :mod:`.stdio`)."""
        lowlevel = self._lowlevel_server
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, tg.cancel_scope)
            lines = StdinLines()
            async with stdio_server(stdin=lines) as (read_stream, write_stream):  # type: ignore[arg-type]
                lines.answer_with(write_stream)
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()


def _line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _add_journal_warnings(result: CallToolResult, context: Context[AppState, Any]) -> None:
    try:
        state: AppState = context.request_context.lifespan_context
    except (AttributeError, ValueError):
        return
    found = state.journal.warnings()
    if not found:
        return
    structured = result.structured_content
    if isinstance(structured, dict) and isinstance(structured.get("warnings"), list):
        structured["warnings"] = [
            *structured["warnings"],
            *(w for w in found if w not in structured["warnings"]),
        ]
    text = next((block for block in result.content if isinstance(block, TextContent)), None)
    lines = [f"Warning: {warning}" for warning in found]
    if text is None:
        result.content.insert(0, TextContent(text="\n".join(lines)))
    else:
        text.text = "\n".join([text.text, *(line for line in lines if line not in text.text)])


def _drop_links_if_unwanted(result: CallToolResult, context: Context[AppState, Any]) -> None:
    """``WIRO_RESOURCE_LINKS=off``: no resource_link blocks, for clients that turn one into an error
    (the image's URL stays in the text and in structuredContent)."""
    try:
        state: AppState = context.request_context.lifespan_context
    except (AttributeError, ValueError):
        return
    if not state.settings.resource_links:
        result.content = [block for block in result.content if not isinstance(block, ResourceLink)]


def _fit(result: CallToolResult) -> None:
    """Drop inline previews from an answer that would outgrow the hosts' limit (never expected:
    every part of an answer is bounded where it is made; this is the last line of defence)."""
    if len(result.model_dump_json(by_alias=True, exclude_none=True)) <= MAX_ANSWER_BYTES:
        return
    result.content = [block for block in result.content if not isinstance(block, ImageContent)]
    log.error("an answer outgrew %d bytes; its inline preview was left out", MAX_ANSWER_BYTES)


def load_settings() -> tuple[Settings, str | None]:
    """Settings from the environment; a bad value is reported by every tool, not a crash at start."""
    try:
        return Settings.from_env(), None
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return Settings(), f"The server's configuration is invalid: {exc}. Fix it and restart the server."


def build_server(
    settings: Settings | None = None, *, app: bool = True, drain: Drain | None = None, **options: Any
) -> SeedreamServer:
    """The server; ``app=False`` leaves out the MCP App (the start-up benchmark's baseline).
    ``drain`` ends its waits early on shutdown (:mod:`.http`); ``options`` go to
    :class:`MCPServer` (auth, request-state keys)."""
    problem: str | None = None
    if settings is None:
        settings, problem = load_settings()
    for note in settings.notes:
        log.warning("%s", note)

    url = settings.journal_url.get_secret_value() if settings.journal_url is not None else None
    journal = open_journal(url, settings.state_dir)
    # Replicas sharing a journal on several machines share no nonce counter file: they take
    # nonces in blocks from the journal instead.
    share_nonces(journal.nonce_block if isinstance(journal, PostgresJournal) else None)
    cancels = CancelReasons()
    drain = drain or Drain()
    client_log = ClientLog()
    bus = InMemorySubscriptionBus()
    watch = TaskWatch(bus)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if problem is None and settings.has_credentials:
            log.info(
                "ready: Wiro at %s, %s authentication",
                settings.base_url,
                "signature" if settings.signed else "key-only",
            )
        elif problem is None and "token_verifier" not in options:
            # (Callers who bring their own keys over HTTP need none here.)
            log.warning("WIRO_API_KEY is not set: tools will answer with a configuration error")
        state = AppState(
            settings=settings,
            journal=journal,
            problem=problem,
            cancels=cancels,
            drain=drain,
            client_log=client_log,
            watch=watch,
        )
        try:
            async with anyio.create_task_group() as background:
                watch.start(background, state)
                try:
                    yield state
                finally:
                    background.cancel_scope.cancel()
        finally:
            await state.aclose()

    middleware = [cancels.observe]
    extensions = []
    if app:
        from . import ui  # imported only for a server with the app: start-up time matters

        middleware.append(ui.only_for_apps)
        extensions.append(ui.build_apps(settings))
    server = SeedreamServer(
        "wiro-seedream",
        title="Seedream 3.0 images (Wiro)",
        description="Text-to-image with ByteDance Seedream 3.0 through the Wiro.ai task API.",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        middleware=middleware,
        extensions=extensions,
        subscriptions=bus,
        **options,
    )
    server.journal = journal
    generate.register(server)
    tasks.register(server, settings.wait_timeout)
    listing.register(server)
    spend.register(server)
    register_catalog(server, journal, settings)
    register_completions(server, journal, settings)
    server.serve_logging(client_log)
    server.serve_subscriptions(watch)
    if app:
        server.stamp(ui.VIEWED_TOOLS, ui.VIEW_META)
        server.for_view_only = ui.APP_TOOLS
    return server
