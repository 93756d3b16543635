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
from typing import Annotated, Any, Literal

from mcp.server.apps import Apps, Visibility
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..arguments import TaskId
from ..catalog import TaskView, output_bytes, spend_of, view_of
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


class ViewedTask(TaskResult):
    """A task as the viewer shows it."""

    parameters: dict[str, Any] = Field(description="The task's inputs, as generate_image takes them.")
    stage: str = Field(description="Where the task is, in words: queued, generating 40%, done...")
    progress: float = Field(description="How far along it is, 0 to 100.")
    stop: Literal["kill_task", "cancel_task"] | None = Field(
        description="The tool that stops it now: cancel_task while queued, kill_task while running."
    )
    spent_today: float | None = Field(description="USD spent today on finished tasks.")


class Gallery(BaseModel):
    tasks: list[TaskView] = Field(description="Recent tasks, newest first.")
    spent_today: float | None = Field(description="USD spent today on finished tasks.")
    spent_this_month: float | None = Field(description="USD spent this month on finished tasks.")
    budget_usd: float | None = Field(description="WIRO_BUDGET_USD, the daily limit, if set.")


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
    async def app_task(ctx: Context[AppState], taskid: TaskId) -> Annotated[CallToolResult, ViewedTask]:
        state = state_of(ctx)
        looked = await look_up(ctx, state, taskid, None, 0)
        result = TaskResult.model_validate(looked.structured_content)
        entry = await journal_entry(state.journal, result.taskid)
        spend = await spend_of(state.journal, state.owner)
        words, progress = _where(result)
        stop = None if result.done else "cancel_task" if result.status == TaskStatus.QUEUE else "kill_task"
        viewed = ViewedTask(
            **result.model_dump(),
            parameters=view_of(entry).parameters if entry is not None else {},
            stage=words,
            progress=progress,
            stop=stop,
            spent_today=spend[0] if spend else None,
        )
        return CallToolResult(
            content=[TextContent(text=f"Task {result.taskid}: {words}.")],
            structured_content=viewed.model_dump(mode="json"),
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
    ) -> Gallery:
        state = state_of(ctx)
        try:
            entries = await state.journal.recent(limit)
        except JournalUnavailableError as exc:
            raise ToolError(str(exc)) from exc
        spend = await spend_of(state.journal, state.owner)
        return Gallery(
            tasks=[view_of(entry) for entry in entries],
            spent_today=spend[0] if spend else None,
            spent_this_month=spend[1] if spend else None,
            budget_usd=state.settings.budget_usd,
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
