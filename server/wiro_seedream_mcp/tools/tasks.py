"""Looking after a task: ``get_task``, ``kill_task`` and ``cancel_task``."""

# No `from __future__ import annotations`: the tool signatures are evaluated at registration,
# and get_task's wait bound is a value known only then.
import logging
from collections.abc import Awaitable
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from ..arguments import MaybeTaskId, TaskId
from ..results import pending_hint, task_result
from ..state import AppState, state_of
from ..wiro.client import exactly_one
from ..wiro.errors import CODE_NOT_FOUND, WiroError
from ..wiro.models import Task
from ..wiro.seedream import MaybeText, optional_text
from .common import (
    TaskOutcome,
    finished,
    follower,
    journal_entry,
    left,
    not_yours,
    reach,
    tool_error,
    unknown_to_wiro,
    wait_for,
)

log = logging.getLogger(__name__)


def _exactly_one(**fields: str | None) -> None:
    try:
        exactly_one(**fields)
    except ValueError as exc:
        raise ToolError(f"{str(exc).capitalize()}.") from None


async def look_up(
    ctx: Context[AppState], state: AppState, taskid: str | None, tasktoken: str | None, wait: float
) -> CallToolResult:
    client = state.client()
    await reach(state, taskid, tasktoken)
    began = anyio.current_time()
    until = began + wait + state.settings.answer_margin
    task: Task | None = None
    problem: str | None = None
    watcher = None
    try:
        with anyio.move_on_after(left(until - 1.0)):
            task = await client.detail(taskid=taskid, tasktoken=tasktoken)
        if task is None:
            problem = f"Wiro did not answer within {state.settings.answer_margin - 1:g} s"
        elif not task.done and wait > 0:
            watcher = follower(ctx, state, task)
            task = await wait_for(state, watcher, max(0.0, began + wait - anyio.current_time()))
    except WiroError as exc:
        if unknown_to_wiro(state, exc, taskid, tasktoken):
            raise ToolError(not_yours(taskid, tasktoken)) from exc
        problem = str(exc)
    if problem is not None:
        # The journal has the follow's last record; else the record Detail gave before the follow.
        entry = await journal_entry(
            state.journal, taskid or (task.id if task else None), tasktoken, owner=state.scope
        )
        remembered = entry.as_task() if entry is not None else task
        if remembered is None:
            about = f" (task {taskid})" if taskid else ""
            raise ToolError(f"Wiro could not look up the task{about}: {problem}")
        return task_result(
            remembered,
            warnings=[f"Wiro could not be asked ({problem}); this is the task as last recorded here."],
            next_step=f'Call get_task with taskid "{remembered.id}" again later.',
        )
    if task is None:  # pragma: no cover - a missing answer is a problem, handled above
        raise ToolError("Wiro gave no answer")
    warnings = watcher.warnings if watcher is not None else []
    if task.done:
        return await finished(state, task, until=until, ctx=ctx, warnings=warnings)
    await state.journal.update(task, owner=state.owner)
    state.watch.follow(task)
    return task_result(task, next_step=pending_hint(task, state.settings, waited=wait), warnings=warnings)


async def _stop(
    ctx: Context[AppState],
    state: AppState,
    action: str,
    call: Awaitable[Task],
    *,
    taskid: str | None,
    token: str | None = None,
    refused: str,
) -> CallToolResult:
    """Kill or Cancel, as the person asked: the task as it now is, or why Wiro refused.

    When Wiro refuses because of the task's state, the task is looked up: one that already ended
    is answered with its final state (nothing to stop, so repeating a stop is not an error); one
    still in the other stage gets the hint to the other tool.
    """
    task: Task | None = None
    # One deadline for the stop and the look that may follow it: the call answers within it.
    until = anyio.current_time() + state.settings.answer_margin
    try:
        with anyio.move_on_after(left(until)):
            task = await call
    except WiroError as exc:
        if unknown_to_wiro(state, exc, taskid, token):
            raise ToolError(not_yours(taskid, token)) from exc
        error = tool_error(exc, f"{action} the task")
        if exc.code != CODE_NOT_FOUND or "state" not in exc.message.lower():
            raise error from exc
        ended = await _ended(state, taskid, token, until)
        if ended is None:
            # The task exists but is past (or not yet at) the point where this action applies.
            raise ToolError(f"{error} {refused}") from exc
        await state.journal.update(ended)
        return task_result(
            ended, lead=f"Task {ended.id} had already ended ({ended.status}): nothing was stopped."
        )
    if task is None:
        raise ToolError(
            f"Wiro did not answer the {action} request within {state.settings.answer_margin:g} s: the task "
            "may still run. Call get_task to see where it stands."
        )
    await state.journal.update(task)
    await state.client_log.say(ctx, "info", f"task {task.id}: {action} requested ({task.status})")
    return task_result(task, lead=f"{action.capitalize()} requested.")


async def _ended(state: AppState, taskid: str | None, token: str | None, until: float) -> Task | None:
    """The task when Wiro says it has ended; None when it still runs or cannot be looked up by
    ``until``."""
    with anyio.move_on_after(left(until)):
        try:
            task = await state.client().detail(taskid=taskid, tasktoken=None if taskid else token)
        except WiroError as exc:
            log.warning("a refused stop could not be followed by a look at the task: %s", exc)
            return None
        return task if task.done else None
    return None


def register(server: MCPServer[AppState], wait_limit: float) -> None:
    @server.tool(
        name="get_task",
        title="Get a Seedream task",
        description=(
            "Look up a Wiro task by its taskid or its tasktoken (give exactly one): its status, and its "
            "images once it has finished. With wait, keeps waiting (reporting progress) up to that many "
            "seconds for it to finish: the way to pick up a task that generate_image handed back "
            "before its image was ready. Cancelling this call does not stop the task."
        ),
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def get_task(
        ctx: Context[AppState],
        taskid: Annotated[MaybeTaskId, Field(description="The task id that generate_image returned.")] = None,
        tasktoken: Annotated[
            MaybeText, optional_text("The task's token (socketaccesstoken), instead of taskid.")
        ] = None,
        wait: Annotated[
            float,
            Field(
                strict=True,
                ge=0,
                le=wait_limit,
                title="Wait",
                description=(
                    f"Seconds to wait for the task to finish, 0 to {wait_limit:g}; 0 (the default) "
                    "answers at once."
                ),
            ),
        ] = 0,
    ) -> TaskOutcome:
        _exactly_one(taskid=taskid, tasktoken=tasktoken)
        return await look_up(ctx, state_of(ctx), taskid, tasktoken, wait)

    @server.tool(
        name="kill_task",
        title="Kill a running Seedream task",
        description=(
            "Stop a task that is already running on Wiro, by taskid or socketaccesstoken (give exactly "
            "one). It ends as task_cancel and produces no image. For a task still in the queue, use "
            "cancel_task. A task that already ended is answered with its final state."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def kill_task(
        ctx: Context[AppState],
        taskid: Annotated[MaybeTaskId, Field(description="The id of the task to stop.")] = None,
        socketaccesstoken: Annotated[MaybeText, optional_text("The task's token, instead of taskid.")] = None,
    ) -> TaskOutcome:
        _exactly_one(taskid=taskid, socketaccesstoken=socketaccesstoken)
        state = state_of(ctx)
        await reach(state, taskid, socketaccesstoken)
        return await _stop(
            ctx,
            state,
            "kill",
            state.client().kill(taskid=taskid, socketaccesstoken=socketaccesstoken),
            taskid=taskid,
            token=socketaccesstoken,
            refused="A task still in the queue is removed with cancel_task.",
        )

    @server.tool(
        name="cancel_task",
        title="Cancel a queued Seedream task",
        description=(
            "Remove a task from Wiro's queue before it starts, by taskid. Wiro refuses once the task "
            "has started: stop a running task with kill_task. A task that already ended is answered "
            "with its final state."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def cancel_task(
        ctx: Context[AppState],
        taskid: Annotated[TaskId, Field(description="The id of the queued task to cancel.")],
    ) -> TaskOutcome:
        _exactly_one(taskid=taskid)
        state = state_of(ctx)
        await reach(state, taskid)
        return await _stop(
            ctx,
            state,
            "cancel",
            state.client().cancel(taskid=taskid),
            taskid=taskid,
            refused="The task has started: stop it with kill_task.",
        )
