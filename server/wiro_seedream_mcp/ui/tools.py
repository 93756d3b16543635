"""The app-only tools (``_meta.ui.visibility = ["app"]``): what the view asks for and the model
never needs. Hosts keep them out of the model's tool list; :func:`..ui.only_for_apps` hides them
from clients that did not negotiate MCP Apps.

* ``app_task``: a task as the viewer shows it: Wiro's current state (journaled, and its images
  saved once it has finished, as ``get_task`` does), its inputs, its stage and how to stop it.
* ``app_tasks``: the gallery's rows, with what each task cost and the day's spend.
* ``app_image``: one image's bytes, for a host or a link that cannot serve the URL.
"""

# No `from __future__ import annotations`: the tool signatures are evaluated at registration.
import base64
from typing import Annotated, Literal

from mcp.server.apps import Apps, Visibility
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field

from ..arguments import TaskId
from ..catalog import output_bytes, spend_of, view_of
from ..follow import stage
from ..journal import JournalUnavailableError
from ..results import TaskResult
from ..state import AppState, state_of
from ..tools.common import journal_entry
from ..tools.tasks import look_up
from ..wiro.models import TaskStatus
from .page import VIEW_URI

APP: list[Visibility] = ["app"]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)


# What the tools answer, for the viewer alone (the model never sees these tools, so they publish
# no output schema: building one would cost every start-up a few milliseconds for nobody):
# * app_task: get_task's structured result plus ``parameters`` (the inputs, as generate_image
#   takes them), ``stage`` (in words), ``progress`` (0-100), ``stop`` ("kill_task" while
#   running, "cancel_task" while queued, else null) and ``spent_today`` (USD);
# * app_tasks: ``tasks`` (as ``wiro://tasks/{id}`` gives each), ``spent_today``,
#   ``spent_this_month`` and ``budget_usd``;
# * app_image: the image as an image content block.
Stop = Literal["kill_task", "cancel_task"]


def _where(result: TaskResult) -> tuple[str, float]:
    if result.done:
        return ("done" if result.succeeded else "failed" if result.error else "ended"), 100.0
    found = stage(result.status)
    return (found[1], found[0]) if found else ("running", 20.0)


def register(apps: Apps) -> None:
    @apps.tool(
        resource_uri=VIEW_URI,
        visibility=APP,
        name="app_task",
        title="A task for the image viewer",
        description="The image viewer's view of one task: state, inputs, stage and images.",
        annotations=READ_ONLY,
    )
    async def app_task(ctx: Context[AppState], taskid: TaskId) -> CallToolResult:
        state = state_of(ctx)
        looked = await look_up(ctx, state, taskid, None, 0)
        result = TaskResult.model_validate(looked.structured_content)
        entry = await journal_entry(state.journal, result.taskid, owner=state.scope)
        spend = await spend_of(state.journal, state.owner)
        words, progress = _where(result)
        stop: Stop | None = None
        if not result.done:
            stop = "cancel_task" if result.status == TaskStatus.QUEUE else "kill_task"
        viewed = {
            **result.model_dump(mode="json"),
            "parameters": view_of(entry).parameters if entry is not None else {},
            "stage": words,
            "progress": progress,
            "stop": stop,
            "spent_today": spend[0] if spend else None,
        }
        return CallToolResult(
            content=[TextContent(text=f"Task {result.taskid}: {words}.")],
            structured_content=viewed,
            is_error=looked.is_error,
        )

    @apps.tool(
        resource_uri=VIEW_URI,
        visibility=APP,
        name="app_tasks",
        title="Recent tasks for the gallery",
        description="The gallery's recent tasks, with their cost, and the day's spend.",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def app_tasks(
        ctx: Context[AppState],
        limit: Annotated[int, Field(strict=True, ge=1, le=100, description="How many tasks, 1 to 100.")] = 24,
    ) -> CallToolResult:
        state = state_of(ctx)
        try:
            entries = await state.journal.recent(limit, state.scope)
        except JournalUnavailableError as exc:
            raise ToolError(str(exc)) from exc
        spend = await spend_of(state.journal, state.owner)
        gallery = {
            "tasks": [view_of(entry).model_dump(mode="json") for entry in entries],
            "spent_today": spend[0] if spend else None,
            "spent_this_month": spend[1] if spend else None,
            "budget_usd": state.settings.budget_usd,
        }
        return CallToolResult(
            content=[TextContent(text=f"{len(entries)} recent task(s).")], structured_content=gallery
        )

    @apps.tool(
        resource_uri=VIEW_URI,
        visibility=APP,
        name="app_image",
        title="An image's bytes for the viewer",
        description="One output image of a task as bytes, for when its link cannot be loaded.",
        annotations=READ_ONLY,
    )
    async def app_image(
        ctx: Context[AppState],
        taskid: TaskId,
        name: Annotated[
            str, Field(min_length=1, max_length=200, description="The output's name, e.g. 0.png.")
        ],
    ) -> CallToolResult:
        try:
            data, mime = await output_bytes(state_of(ctx), taskid, name)
        except ResourceError as exc:
            raise ToolError(str(exc)) from exc
        return CallToolResult(
            content=[ImageContent(data=base64.b64encode(data).decode("ascii"), mime_type=mime or "image/png")]
        )
