"""What the tools share: time limits, following a task, finishing it, turning errors into one line."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import ValidationError

from ..arguments import one_line
from ..follow import PROGRESS_TOTAL, OnProgress, TaskFollower, left
from ..journal import JournalEntry, JournalUnavailableError, TaskJournal
from ..results import TaskResult, task_result
from ..state import AppState
from ..wiro.errors import CODE_NOT_FOUND, WiroError
from ..wiro.models import Task
from ..wiro.seedream import SeedreamInputs

log = logging.getLogger(__name__)

__all__ = [
    "TaskOutcome",
    "checked_inputs",
    "finished",
    "follower",
    "journal_entry",
    "left",
    "reach",
    "same_inputs",
    "tool_error",
    "wait_for",
]

TaskOutcome = Annotated[CallToolResult, TaskResult]


def checked_inputs(**fields: Any) -> SeedreamInputs:
    """The model's inputs, or one line naming the argument that is wrong and what is allowed."""
    try:
        return SeedreamInputs(**fields)
    except ValidationError as exc:
        raise ToolError(one_line(exc, SeedreamInputs.model_json_schema())) from exc


def tool_error(exc: WiroError, action: str) -> ToolError:
    about = f" (task {exc.taskid})" if exc.taskid else ""
    return ToolError(f"Wiro could not {action}{about}: {exc}")


def follower(
    ctx: Context[AppState], state: AppState, task: Task, report: OnProgress | None = None
) -> TaskFollower:
    """A follower of ``task`` that reports its progress to the call (or to ``report``: one task of
    a set), logs its stages to the client and tells subscribers when it reaches a new one."""
    stage = [""]

    async def progress(value: float, message: str) -> None:
        if report is None:
            await ctx.report_progress(value, PROGRESS_TOTAL, message)
        else:
            await report(value, message)
        await state.client_log.say(ctx, "debug", f"task {task.id}: {message}")
        word = message.split(" ", 1)[0]
        if word != stage[0]:  # a new stage, not another percent
            stage[0] = word
            await state.watch.updated(task.id)

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
    journal: TaskJournal, taskid: str | None, token: str | None = None, owner: str | None = None
) -> JournalEntry | None:
    """The task as the journal last recorded it (of ``owner`` only, when given); None when it is not
    there or cannot be read."""
    try:
        if taskid:
            return await journal.get(taskid, owner)
        if token:
            return await journal.by_token(token, owner)
    except JournalUnavailableError as exc:
        log.warning("%s", exc)
    return None


def not_yours(taskid: str | None, token: str | None = None) -> str:
    """The answer for a task that is not the caller's: the same whether or not it exists."""
    which = f"task {taskid}" if taskid else "the task with that token"
    return f"{which} is not one of yours: this server knows no such task started with your credentials"


def unknown_to_wiro(state: AppState, exc: WiroError, taskid: str | None, token: str | None = None) -> bool:
    """Whether Wiro answered that it has no such task, for a caller whose answers must not tell a
    task that does not exist from another caller's (both get :func:`not_yours`)."""
    return (
        state.caller.scoped
        and exc.code == CODE_NOT_FOUND
        and "state" not in exc.message.lower()
        and (taskid is not None or token is not None)
    )


async def reach(state: AppState, taskid: str | None, token: str | None = None) -> None:
    """Refuse a task the caller may not reach, before Wiro is asked anything about it.

    A caller with its own key may reach any task the journal does not give to someone else: Wiro
    itself answers only for that key's project. A user of the team key reaches only the tasks
    journaled under its owner, as every team member's tasks are on the one key.
    """
    caller = state.caller
    if not caller.scoped:
        return
    try:
        entry = await (state.journal.get(taskid) if taskid else state.journal.by_token(token or ""))
    except JournalUnavailableError as exc:
        if caller.own_key:
            return
        raise ToolError(f"{exc}: whose task this is cannot be checked, so it was not looked up") from exc
    if entry is not None and entry.owner == caller.owner:
        return
    if entry is None and caller.own_key:
        return
    raise ToolError(not_yours(taskid, token))


async def wait_for(state: AppState, watcher: TaskFollower, seconds: float) -> Task:
    """``watcher.wait``, ended early with the task as last seen when the server shuts down."""
    task: Task | None = None
    with state.drain.wait() as scope:
        task = await watcher.wait(seconds)
    if scope.cancelled_caught or task is None:
        watcher.warnings.append(
            "the server is shutting down, so the wait ended early; the task goes on: pick it up with get_task"
        )
        return watcher.latest or Task(
            id=watcher.taskid, socketaccesstoken=watcher.token or "", status=watcher.status
        )
    return task


# How long an image already made is still fetched and saved once its call has ended early (the
# client gave up, stdin closed, a signal came): the person paid for it, and the server exits
# within 10 s of a quit all the same.
SAVE_GRACE = 5.0


async def finished(
    state: AppState,
    task: Task,
    *,
    until: float,
    ctx: Context[AppState] | None = None,
    smaller: bool = False,
    **options: Any,
) -> CallToolResult:
    """The result for a task that ended: journal it, deliver its images by ``until``, describe it.
    A call that ends while the images are delivered still saves them, within :data:`SAVE_GRACE`.
    ``smaller``: a smaller preview (one of several in the answer)."""
    # Wiro answered for this caller's credentials (or the caller's own journaled task): theirs.
    await state.journal.update(task, owner=state.owner)
    entry = await journal_entry(state.journal, task.id, owner=state.scope)
    try:
        delivered = await state.delivery.deliver(task, entry, until=until, smaller=smaller)
    except anyio.get_cancelled_exc_class():
        if state.settings.output_dir is not None:
            with anyio.CancelScope(shield=True):
                late = anyio.current_time() + SAVE_GRACE
                entry = await journal_entry(state.journal, task.id, owner=state.scope)
                saved = await state.delivery.deliver(task, entry, until=late)
                paths = [str(item.path) for item in saved.values() if item.path is not None]
                log.warning(
                    "task %s: the call ended while its image was delivered; %s",
                    task.id,
                    f"saved to {', '.join(paths)}" if paths else "it could not be saved in time",
                )
        raise
    await state.watch.updated(task.id)
    result = task_result(task, delivered=delivered, **options)
    if task.succeeded:
        await state.client_log.say(ctx, "info", f"task {task.id}: done ({task.status})")
    else:
        await state.client_log.say(ctx, "error", f"task {task.id}: ended without an image ({task.status})")
    for warning in (result.structured_content or {}).get("warnings") or []:
        await state.client_log.say(ctx, "warning", f"task {task.id}: {warning}")
    return result


async def reuse(state: AppState, entry: JournalEntry, until: float) -> Task | None:
    """The journal's task as Wiro has it now; None (so a new task is started) when it failed, was
    stopped, or Wiro could not confirm it. A task the journal saw succeed is taken as it is."""
    task = entry.as_task()
    if task.done:
        return task
    found: Task | None = None
    with anyio.move_on_after(left(until)):
        try:
            found = await state.client().detail(taskid=entry.taskid)
        except WiroError as exc:
            log.warning("task %s: not reused, Wiro could not confirm it: %s", entry.taskid, exc)
    if found is None or (found.done and not found.succeeded):
        return None
    return found


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
