"""``generate_image``: start one paid task, follow it to its image, and never lose it."""

# No `from __future__ import annotations`: the tool signature is evaluated at registration.
import logging
import time
from datetime import UTC, datetime
from typing import Annotated

import anyio
from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Resolve
from mcp.types import ToolAnnotations
from pydantic import Field

from ..cancels import ended_because, should_stop
from ..follow import stop_quietly
from ..journal import JournalEntry
from ..results import Reused, pending_hint, task_result
from ..state import AppState, state_of
from ..wiro.errors import WiroError
from ..wiro.models import Task, TaskStatus
from ..wiro.seedream import (
    DEFAULT_GUIDANCE,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    DEFAULT_WATERMARK,
    CallbackUrl,
    GuidanceScale,
    Prompt,
    Seed,
    SizeParam,
    Watermark,
)
from .common import (
    TaskOutcome,
    checked_inputs,
    finished,
    follower,
    reuse,
    same_inputs,
    wait_for,
)
from .confirm import StartTask, confirmation, go_ahead, planned_by, reused_by
from .sets import Count, plan_set
from .starting import start
from .variations import generate_set

log = logging.getLogger(__name__)

Wait = Annotated[
    bool,
    Field(
        strict=True,
        title="Wait",
        description=(
            "Wait for the image (true, the default) or return the task id right after the task was "
            "started (false), to pick it up later with get_task."
        ),
    ),
]


NewTask = Annotated[
    bool,
    Field(
        strict=True,
        title="New task",
        description=(
            "Start a new task even if one with exactly these inputs was started a few minutes ago. "
            "By default (false) such a call returns that task and its image instead of paying for "
            "another, so a retry after a client time-out never pays twice. A seed of 0 (random) "
            "always starts a new task."
        ),
    ),
]


def reused_from(entry: JournalEntry) -> Reused:
    """When the task being returned again was started, for ``structuredContent``."""
    started = datetime.fromtimestamp(entry.created, tz=UTC).isoformat(timespec="seconds")
    return Reused(startedat=started, secondsago=max(0, round(time.time() - entry.created)))


def reused_lead(entry: JournalEntry) -> str:
    ago = max(0, round(time.time() - entry.created))
    return (
        f"A task with exactly these inputs was started {ago} s ago (task {entry.taskid}); this is that "
        "task, not a new one, so nothing was paid twice. To make another image, change the seed or "
        "pass new_task true."
    )


def register(server: MCPServer[AppState]) -> None:
    @server.tool(
        name="generate_image",
        title="Generate an image with Seedream 3.0",
        description=(
            "Make one image from a text prompt with ByteDance Seedream 3.0 on Wiro.ai. Starts a paid "
            "task and waits for it, reporting progress; returns the image as a link with its task id. "
            "If the image is not ready in time, returns the task id instead: then call get_task with "
            "wait, do not generate again. The same inputs again within a few minutes return the task "
            "already started (a retry never pays twice). A call that ends early (a time-out, a cancel, "
            "a dropped connection) leaves the task running: to stop a task, call kill_task or cancel_task. "
            "For several options, pass count (up to 4): the images are made at once and returned together, "
            "each with its seed."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def generate_image(
        ctx: Context[AppState],
        confirmed: Annotated[ElicitationResult[StartTask], Resolve(confirmation)],
        prompt: Prompt,
        size: SizeParam = DEFAULT_SIZE,
        watermark: Watermark = DEFAULT_WATERMARK,
        guidanceScale: GuidanceScale = DEFAULT_GUIDANCE,  # noqa: N803 - Wiro's field name
        seed: Seed = DEFAULT_SEED,
        callbackUrl: CallbackUrl = None,  # noqa: N803 - Wiro's field name
        wait: Wait = True,
        new_task: NewTask = False,
        count: Count = 1,
    ) -> TaskOutcome:
        inputs = checked_inputs(
            prompt=prompt,
            size=size,
            watermark=watermark,
            guidanceScale=guidanceScale,
            seed=seed,
            callbackUrl=callbackUrl,
        )
        state = state_of(ctx)
        client = state.client()
        await go_ahead(confirmed)
        waiting = state.settings.wait_timeout if wait else 0.0
        began = anyio.current_time()
        until = began + waiting + state.settings.answer_margin
        lead: str | None = None
        reused: Reused | None = None
        warnings: list[str] = []
        estimate = await state.prices.estimate(inputs, state.owner)
        if count > 1:
            plan = planned_by(confirmed) or await plan_set(
                state, inputs, count, new_task=new_task, until=until - 1.0
            )
            return await generate_set(
                ctx,
                state,
                inputs,
                plan,
                wait=wait,
                began=began,
                waiting=waiting,
                until=until,
                estimate=estimate,
            )
        # The confirmation already found (and checked with Wiro) a task to return again, or looked
        # for none (no WIRO_CONFIRM): then it is looked for here. Never both, so a task it did not
        # ask about because of a reuse is the task returned.
        entry, accepted = reused_by(confirmed) or (None, None)
        if entry is None and not new_task and state.settings.confirm_above is None:
            entry = await same_inputs(state, inputs)
            accepted = await reuse(state, entry, until - 1.0) if entry is not None else None
        if entry is not None and accepted is not None:
            lead, reused = reused_lead(entry), reused_from(entry)
        if accepted is None:
            with anyio.CancelScope(shield=True):
                receipt, warnings = await start(state, inputs, until - 1.0, estimate)
            accepted = Task(
                id=receipt.taskid, socketaccesstoken=receipt.socketaccesstoken, status=TaskStatus.QUEUE
            )
            await state.client_log.say(ctx, "info", f"task {accepted.id}: started ({inputs.size})")
        if accepted.done:
            return await finished(
                state,
                accepted,
                until=until,
                ctx=ctx,
                lead=lead,
                warnings=warnings,
                estimate=estimate,
                reused=reused,
            )
        watcher = follower(ctx, state, accepted)
        try:
            await anyio.lowlevel.checkpoint()  # a cancellation that came during Run lands here
            if not wait:
                state.watch.follow(accepted)  # for whoever subscribes to it
                return task_result(
                    accepted,
                    lead=lead or "Task started.",
                    reused=reused,
                    next_step=pending_hint(accepted, state.settings),
                    warnings=warnings,
                    estimate=estimate,
                )
            await watcher.note(accepted.status or TaskStatus.QUEUE)
            task = await wait_for(state, watcher, max(0.0, began + waiting - anyio.current_time()))
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                reason = await state.cancels.reason(ctx)
            if should_stop(reason, stop_on_cancel=state.settings.stop_on_cancel):
                log.warning("task %s: the call was cancelled (%s); stopping the task", accepted.id, reason)
                await stop_quietly(client, accepted.id, watcher.status, state.journal.update)
                raise
            log.warning(
                "task %s: the call ended before its image (%s); the task keeps running on Wiro and is "
                "journaled: get_task with this task id, list_tasks, or the same generate_image call "
                "again picks it up",
                accepted.id,
                ended_because(reason),
            )
            raise
        except WiroError as exc:
            log.warning("task %s: following it failed: %s", accepted.id, exc)
            return task_result(
                accepted.model_copy(update={"status": watcher.status}),
                error=f"the task was started, but checking on it failed: {exc}",
                next_step=pending_hint(accepted, state.settings),
                warnings=warnings,
                estimate=estimate,
            )
        warnings.extend(watcher.warnings)
        if task.done:
            return await finished(
                state,
                task,
                until=until,
                ctx=ctx,
                cancelled_is_error=True,
                lead=lead,
                warnings=warnings,
                estimate=estimate,
                reused=reused,
            )
        state.watch.follow(task)
        return task_result(
            task,
            lead=lead,
            reused=reused,
            next_step=pending_hint(task, state.settings, waited=waiting),
            warnings=warnings,
            estimate=estimate,
        )
