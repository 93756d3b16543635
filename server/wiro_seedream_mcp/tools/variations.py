"""``generate_image`` with ``count`` above 1: the set's tasks started under one budget hold, followed
together with one progress stream, and answered once (:func:`..results.set_result`).

The rules of one task hold for each: journaled the moment Wiro accepts it; a call that ends early
leaves every task running (only a person stops a paid task, and then all of the set); a Run
that fails starts no more and the answer says which were started; a task that fails is reported
beside those that made their image."""

from __future__ import annotations

import logging

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from ..cancels import ended_because, should_stop
from ..follow import TaskFollower, stop_quietly
from ..pricing import CostEstimate
from ..results import pending_hint, set_result, task_result
from ..state import AppState
from ..wiro.errors import WiroError
from ..wiro.models import Task, TaskStatus
from ..wiro.seedream import SeedreamInputs
from .common import finished, follower, wait_for
from .sets import SetPlan, SetProgress, journaled
from .starting import MayHaveStartedError, hold, run_once

log = logging.getLogger(__name__)


async def start_missing(
    ctx: Context[AppState],
    state: AppState,
    inputs: SeedreamInputs,
    plan: SetPlan,
    until: float,
    estimate: CostEstimate,
) -> tuple[list[str], str | None]:
    """Start the set's missing tasks one Run after another, under one hold of their estimates (it
    stays held until the last is journaled). A Run that fails starts no more: (warnings, why)."""
    missing = plan.missing
    reservation = await hold(state, estimate, len(missing))
    warnings: list[str] = []
    for number, index in enumerate(missing):
        member = inputs.model_copy(update={"seed": plan.seeds[index]})
        last = number == len(missing) - 1
        try:
            receipt, more = await run_once(
                state,
                member,
                until,
                estimate,
                reservation if last else None,
                journaled(member, plan.key, index, len(plan.tasks)),
            )
        except MayHaveStartedError as exc:  # what was held stays held until it expires
            return warnings, str(exc)
        except ToolError as exc:
            if reservation is not None:  # the tasks already started count by themselves
                await state.journal.release(reservation)
            return warnings, str(exc)
        warnings.extend(more)
        plan.tasks[index] = Task(
            id=receipt.taskid, socketaccesstoken=receipt.socketaccesstoken, status=TaskStatus.QUEUE
        )
        which = f"seed {member.seed}, {number + 1} of {len(missing)}"
        await state.client_log.say(ctx, "info", f"task {receipt.taskid}: started ({inputs.size}, {which})")
    return warnings, None


async def generate_set(
    ctx: Context[AppState],
    state: AppState,
    inputs: SeedreamInputs,
    plan: SetPlan,
    *,
    wait: bool,
    began: float,
    waiting: float,
    until: float,
    estimate: CostEstimate,
) -> CallToolResult:
    count = len(plan.tasks)
    warnings: list[str] = []
    failure: str | None = None
    if plan.missing:
        with anyio.CancelScope(shield=True):
            warnings, failure = await start_missing(ctx, state, inputs, plan, until - 1.0, estimate)
    placed = [k for k, task in enumerate(plan.tasks) if task is not None]
    if not placed:
        raise ToolError(failure or "no task of the set was started")
    lead = f"A set of {count} images of one prompt (seeds {', '.join(str(plan.seeds[k]) for k in placed)})."
    if plan.reused:
        lead += (
            f" {len(plan.reused)} of its tasks were started by the same call a few minutes ago and are "
            "returned again: nothing was paid twice. Pass new_task true for another set."
        )
    if failure is not None:
        lead += f" Only {len(placed)} of the {count} tasks were started, then: {failure}"
    if not wait:
        for k in placed:
            state.watch.follow(_task(plan, k))
        results = [task_result(_task(plan, k), estimate=estimate) for k in placed]
        ids = ", ".join(f'"{_task(plan, k).id}"' for k in placed)
        hint = f"Call get_task with each taskid ({ids}) to wait for its image."
        seeds = [plan.seeds[k] for k in placed]
        return set_result(results, seeds, lead=lead, next_step=hint, warnings=warnings)
    results = await follow_all(ctx, state, plan, placed, began + waiting, until, estimate)
    return set_result(results, [plan.seeds[k] for k in placed], lead=lead, warnings=warnings)


def _task(plan: SetPlan, index: int) -> Task:
    task = plan.tasks[index]
    assert task is not None  # noqa: S101 - only placed tasks are asked for
    return task


async def follow_all(
    ctx: Context[AppState],
    state: AppState,
    plan: SetPlan,
    placed: list[int],
    wait_until: float,
    until: float,
    estimate: CostEstimate,
) -> list[CallToolResult]:
    """Follow every placed task at once; each one's result, in the set's order."""
    progress = SetProgress(ctx, len(placed))
    results: dict[int, CallToolResult] = {}
    latest: dict[int, Task] = {k: _task(plan, k) for k in placed}
    # The followers: each task's status as last seen, which is what a stop is chosen by.
    watchers: dict[int, TaskFollower] = {}

    async def one(index: int) -> None:
        task = latest[index]
        if not task.done:
            watcher = watchers[index] = follower(ctx, state, task, report=progress.of(index))
            try:
                await watcher.note(task.status or TaskStatus.QUEUE)
                task = latest[index] = await wait_for(
                    state, watcher, max(0.0, wait_until - anyio.current_time())
                )
            except WiroError as exc:
                log.warning("task %s: following it failed: %s", task.id, exc)
                results[index] = task_result(
                    task.model_copy(update={"status": watcher.status}),
                    error=f"the task was started, but checking on it failed: {exc}",
                    next_step=pending_hint(task, state.settings),
                    estimate=estimate,
                )
                return
        if task.done:
            await progress.ended_one(index)
            results[index] = await finished(
                state, task, until=until, ctx=ctx, cancelled_is_error=True, smaller=True, estimate=estimate
            )
        else:
            state.watch.follow(task)
            results[index] = task_result(
                task, next_step=pending_hint(task, state.settings), estimate=estimate
            )

    try:
        async with anyio.create_task_group() as group:
            for index in placed:
                group.start_soon(one, index)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            reason = await state.cancels.reason(ctx)
            running = {k: task for k, task in latest.items() if not task.done}
            if should_stop(reason, stop_on_cancel=state.settings.stop_on_cancel):
                log.warning(
                    "a set of %d tasks: the call was cancelled (%s); stopping them", len(running), reason
                )
                async with anyio.create_task_group() as stops:
                    for k, task in running.items():
                        status = watchers[k].status if k in watchers else task.status
                        stops.start_soon(stop_quietly, state.client(), task.id, status, state.journal.update)
            else:
                log.warning(
                    "tasks %s: the call ended before their images (%s); they keep running on Wiro and are "
                    "journaled: get_task with a task id, list_tasks, or the same generate_image call again "
                    "picks them up",
                    ", ".join(task.id for task in running.values()),
                    ended_because(reason),
                )
        raise
    return [results[k] for k in placed]
