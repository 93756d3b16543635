"""The MCP App (``io.modelcontextprotocol/ui``): the image viewer and gallery hosts show in the
conversation, for clients that negotiate the extension.

* ``generate_image``, ``get_task`` and ``list_tasks`` carry ``_meta.ui.resourceUri`` =
  :data:`VIEW_URI`; the host renders that one self-contained page (:mod:`.page`) in a sandboxed
  iframe and hands it the tool's input and result.
* The page declares where its images come from (Wiro's CDN and the configured API's own origin,
  nothing broader) and calls the app-only tools of :mod:`.tools` for what the model never needs:
  a task with its inputs and stage, the gallery's rows, an image's bytes when a link cannot load.
* A client that did not negotiate the extension sees none of it: :func:`only_for_apps` keeps its
  ``tools/list`` and ``resources/list`` exactly as they are without the app, and refuses the
  app-only tools.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mcp.server.apps import APP_MIME_TYPE, Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.resources import FunctionResource
from mcp.types import CallToolResult, ListResourcesResult, ListToolsResult, TextContent, Tool

from ..config import Settings
from .page import VIEW_URI

__all__ = ["VIEW_URI", "build_apps", "image_origins", "only_for_apps"]

# Stamped on the tools whose results the view shows.
VIEW_META: dict[str, Any] = {"ui": {"resourceUri": VIEW_URI}}
# The tools whose results the view shows.
VIEWED_TOOLS = ("generate_image", "get_task", "list_tasks")
# Wiro's CDN, as the reference's output URLs show it.
WIRO_CDN = "https://cdn1.wiro.ai"


def image_origins(settings: Settings) -> list[str]:
    """The origins the view may load images from: Wiro's CDN and the API's own (the emulator
    serves its images there)."""
    parts = urlsplit(settings.base_url)
    api = f"{parts.scheme}://{parts.netloc}"
    return [WIRO_CDN] if api == WIRO_CDN else [WIRO_CDN, api]


def build_apps(settings: Settings) -> Apps:
    """The extension: the view's resource and the app-only tools."""
    from . import page, tools  # the tools import the server's task code: only when built

    apps = Apps()
    csp = ResourceCsp(resource_domains=image_origins(settings))
    apps.add_resource(
        FunctionResource(
            uri=VIEW_URI,
            name="image-view",
            title="Seedream image viewer",
            description="The image of a task at full size, with its inputs, cost and actions; "
            "and the gallery of recent tasks.",
            mime_type=APP_MIME_TYPE,
            meta={"ui": {"csp": csp.model_dump(by_alias=True, exclude_none=True), "prefersBorder": True}},
            fn=page.html,  # read on the first resources/read, not at start-up
        )
    )
    tools.register(apps)
    return apps


def app_only(tool_meta: dict[str, Any] | None) -> bool:
    ui = (tool_meta or {}).get("ui")
    return isinstance(ui, dict) and ui.get("visibility") == ["app"]


async def only_for_apps(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: to a client that did not negotiate MCP Apps, the server looks as it does
    without the app (no ``_meta.ui``, no app-only tools, no ``ui://`` resource)."""
    if ctx.method not in {"tools/list", "tools/call", "resources/list"} or client_supports_apps(ctx):
        return await call_next(ctx)
    if ctx.method == "tools/call":
        name = ctx.params.get("name") if isinstance(ctx.params, dict) else None
        if isinstance(name, str) and name in APP_TOOLS:
            return CallToolResult(
                content=[
                    TextContent(text=f"Unknown tool: {name} (it serves the image viewer of MCP Apps hosts)")
                ],
                is_error=True,
            )
        return await call_next(ctx)
    result = await call_next(ctx)
    if isinstance(result, ListToolsResult):
        shown = [tool for tool in result.tools if not app_only(tool.meta)]
        result.tools = [_tool_without_ui(tool) for tool in shown]
    elif isinstance(result, ListResourcesResult):
        result.resources = [r for r in result.resources if not str(r.uri).startswith("ui://")]
    elif isinstance(result, dict):  # the wire form, once the runner has stamped the result
        if isinstance(result.get("tools"), list):
            shown_wire = [tool for tool in result["tools"] if not app_only(tool.get("_meta"))]
            result["tools"] = [_wire_without_ui(tool) for tool in shown_wire]
        if isinstance(result.get("resources"), list):
            result["resources"] = [
                r for r in result["resources"] if not str(r.get("uri", "")).startswith("ui://")
            ]
    return result


def _rest(meta: dict[str, Any]) -> dict[str, Any] | None:
    return {key: value for key, value in meta.items() if key != "ui"} or None


def _tool_without_ui(tool: Tool) -> Tool:
    if not tool.meta or "ui" not in tool.meta:
        return tool
    return tool.model_copy(update={"meta": _rest(tool.meta)})


def _wire_without_ui(tool: dict[str, Any]) -> dict[str, Any]:
    meta = tool.get("_meta")
    if not isinstance(meta, dict) or "ui" not in meta:
        return tool
    rest = _rest(meta)
    shown = {key: value for key, value in tool.items() if key != "_meta"}
    return {**shown, "_meta": rest} if rest else shown


# The app-only tools' names (see :mod:`.tools`).
APP_TOOLS = frozenset({"app_task", "app_tasks", "app_image"})
