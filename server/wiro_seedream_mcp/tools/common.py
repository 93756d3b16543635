"""What the tools share: time limits, following a task, finishing it, turning errors into one line."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from ..follow import ANSWER_MARGIN, PROGRESS_TOTAL, TaskFollower, left
from ..journal import Journal, JournalEntry, JournalUnavailableError
from ..results import TaskResult, task_result
from ..state import AppState
from ..wiro.errors import WiroError
from ..wiro.models import Task
from ..wiro.seedream import SeedreamInputs

log = logging.getLogger(__name__)

__all__ = [
    "ANSWER_MARGIN",
    "TaskOutcome",
    "finished",
    "follower",
    "journal_entry",
    "left",
    "same_inputs",
    "tool_error",
]

TaskOutcome = Annotated[CallToolResult, TaskResult]


def tool_error(exc: WiroError, action: str) -> ToolError:
    about = f" (task {exc.taskid})" if exc.taskid else ""
    return ToolError(f"Wiro could not {action}{about}: {exc}")


def follower(ctx: Context[AppState], state: AppState, task: Task) -> TaskFollower:
    async def progress(value: float, message: str) -> None:
        await ctx.report_progress(value, PROGRESS_TOTAL, message)

    return TaskFollower(
        state.client(),
        task.id,
        token=task.socketaccesstoken or None,
        socket_url=state.settings.socket_url,
        on_progress=progress,
        on_task=state.journal.update,
        status=task.status,
    )


async def journal_entry(
    journal: Journal, taskid: str | None, token: str | None = None
) -> JournalEntry | None:
    """The task as the journal last recorded it; None when it is not there or cannot be read."""
    try:
        if taskid:
            return await journal.get(taskid)
        if token:
            return await journal.by_token(token)
    except JournalUnavailableError as exc:
        log.warning("%s", exc)
    return None


async def finished(state: AppState, task: Task, *, until: float, **options: Any) -> CallToolResult:
    """The result for a task that ended: journal it, deliver its images by ``until``, describe it."""
    await state.journal.update(task)
    entry = await journal_entry(state.journal, task.id)
    delivered = await state.delivery.deliver(task, entry, until=until)
    return task_result(task, delivered=delivered, **options)


async def same_inputs(state: AppState, inputs: SeedreamInputs) -> JournalEntry | None:
    """A task this server started within the reuse window with exactly these inputs that is still
    running or ended with its image; None when there is none (or the seed is random)."""
    window = state.settings.reuse_window
    if window <= 0 or inputs.seed == 0:
        return None
    wire = json.loads(json.dumps(inputs.to_wire()))
    try:
        recent = await state.journal.started_since(time.time() - window, state.owner)
    except JournalUnavailableError as exc:
        log.warning("%s", exc)
        return None
    for entry in recent:
        if entry.parameters == wire and (not entry.done or (entry.succeeded and entry.outputs)):
            return entry
    return None
