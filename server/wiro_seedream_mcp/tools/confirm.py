"""``WIRO_CONFIRM``: the person, not the model, says yes before a paid task starts.

A resolver of ``generate_image`` (``mcp.server.mcpserver.resolve``) runs before the tool body. When
the setting applies it asks the person through the client (elicitation: mid-call on older
protocols, an ``InputRequiredResult`` round on 2026-07-28) with the prompt, the size and the
estimate. A client that cannot ask gets a refusal naming the setting: the model can never answer
in the person's place, since no tool argument carries the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit
from pydantic import BaseModel, Field

from ..budget import today
from ..journal import JournalEntry, JournalUnavailableError
from ..state import AppState, call_slot, state_of
from ..wiro.models import Task
from ..wiro.seedream import SeedreamInputs
from .common import checked_inputs, reuse, same_inputs
from .sets import MOST, SetPlan, plan_set

PROMPT_SHOWN = 200


class StartTask(BaseModel):
    """The person's answer."""

    start: bool = Field(
        title="Start this task", description="Start it on Wiro; it is charged to your balance."
    )


@dataclass(frozen=True)
class NotAsked:
    """No question was put: none was needed, or (``refusal``) the client cannot ask one."""

    refusal: str | None = None
    # Not asked because the task already started with these inputs is returned again: its journal
    # entry and the task as Wiro has it now, for the tool to return without asking Wiro again.
    reused: tuple[JournalEntry, Task] | None = None
    # Not asked about a set (count above 1): the set as the confirmation found it (the tasks the
    # same call already started, checked with Wiro), for the tool to start only what it lacks.
    plan: SetPlan | None = None


async def confirmation(
    ctx: Context[AppState],
    prompt: str,
    size: str,
    watermark: bool,
    guidanceScale: float,  # noqa: N803 - Wiro's field name
    seed: int,
    callbackUrl: str | None,  # noqa: N803 - Wiro's field name
    new_task: bool,
    count: int = 1,
) -> NotAsked | Elicit[StartTask]:
    state = state_of(ctx)
    threshold = state.settings.confirm_above
    inputs = _valid(prompt, size, watermark, guidanceScale, seed, callbackUrl, count)
    if threshold is None or inputs is None:
        return NotAsked()  # nothing to ask, or inputs the tool refuses in one line, asking nothing
    found = await _to_start(state, inputs, count, new_task)
    if isinstance(found, NotAsked):
        return found
    starting, plan = found
    estimate = await state.prices.estimate(inputs, state.owner)
    usd = estimate.usd * starting if estimate.usd is not None else None
    if threshold > 0 and usd is not None and usd <= threshold:
        try:
            spend = await today(state.journal, state.owner)
        except JournalUnavailableError:
            spend = None
        if spend is not None and spend.finished + spend.held + usd <= threshold:
            return NotAsked(plan=plan)
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        higher = " or a higher amount" if threshold > 0 else ""
        return NotAsked(
            "WIRO_CONFIRM asks the person before a paid task starts, and this client cannot ask "
            f"(it does not support elicitation); nothing was started. Set WIRO_CONFIRM=never{higher} "
            "where the server is started to allow it"
        )
    # While the person thinks, the call holds none of the caller's running-call slots.
    slot = call_slot.get()
    if slot is not None:
        await slot.release()
    shown = prompt if len(prompt) <= PROMPT_SHOWN else prompt[: PROMPT_SHOWN - 3] + "..."
    if starting == 1:
        cost = f"about ${usd:.4g} ({estimate.basis})" if usd is not None else "not known"
        return Elicit(f"Start a paid Seedream task? Prompt: {shown!r}; size {size}; cost {cost}.", StartTask)
    known = usd is not None and estimate.usd is not None
    cost = f"about ${usd:.4g} in all (${estimate.usd:.4g} each, {estimate.basis})" if known else "not known"
    return Elicit(
        f"Start {starting} paid Seedream tasks, one image each (a set of {count})? Prompt: {shown!r}; "
        f"size {size}; cost {cost}.",
        StartTask,
    )


def _valid(
    prompt: str, size: str, watermark: bool, guidance: float, seed: int, callback: str | None, count: int
) -> SeedreamInputs | None:
    """The inputs, or None for those the tool itself refuses (in one line, before anything is asked)."""
    if not isinstance(count, int) or not 1 <= count <= MOST:
        return None
    try:
        return checked_inputs(
            prompt=prompt,
            size=size,
            watermark=watermark,
            guidanceScale=guidance,
            seed=seed,
            callbackUrl=callback,
        )
    except ToolError:
        return None


async def _to_start(
    state: AppState, inputs: SeedreamInputs, count: int, new_task: bool
) -> tuple[int, SetPlan | None] | NotAsked:
    """How many paid tasks this call would start (and, for a set, the set): the task (or the tasks
    of the set) the same call already started, and that Wiro still has, is returned again without
    asking."""
    until = anyio.current_time() + state.settings.answer_margin
    if count > 1:
        plan = await plan_set(state, inputs, count, new_task=new_task, until=until)
        return (len(plan.missing), plan) if plan.missing else NotAsked(plan=plan)
    entry = None if new_task else await same_inputs(state, inputs)
    if entry is not None:
        # Only a task Wiro still has is returned again; one stopped elsewhere means a new task.
        found = await reuse(state, entry, until)
        if found is not None:
            return NotAsked(reused=(entry, found))  # the task already started: nothing new is paid
    return 1, None


def reused_by(outcome: ElicitationResult[StartTask]) -> tuple[JournalEntry, Task] | None:
    """The task the confirmation found already started with these inputs (so it asked nothing),
    with its journal entry; None when it looked for none or found none."""
    if isinstance(outcome, AcceptedElicitation) and isinstance(outcome.data, NotAsked):
        return outcome.data.reused
    return None


def planned_by(outcome: ElicitationResult[StartTask]) -> SetPlan | None:
    """The set the confirmation found when it asked nothing about it; None when it looked for none
    (no WIRO_CONFIRM) or asked the person (who took time: the set is looked at again)."""
    if isinstance(outcome, AcceptedElicitation) and isinstance(outcome.data, NotAsked):
        return outcome.data.plan
    return None


def refusal_of(outcome: ElicitationResult[StartTask]) -> str | None:
    """None when the task may start; otherwise why not, in one line."""
    if isinstance(outcome, AcceptedElicitation):
        data = outcome.data
        if isinstance(data, NotAsked):
            return data.refusal
        if isinstance(data, StartTask) and data.start:
            return None
        return "The person did not confirm the task, so it was not started and nothing was paid."
    how = "declined" if outcome.action == "decline" else "cancelled"
    return f"The person {how} the confirmation, so the task was not started and nothing was paid."


async def go_ahead(outcome: ElicitationResult[StartTask]) -> None:
    """Raise the refusal when the task may not start; else take back the running-call slot let go
    while the person was asked (refused when the caller's other calls took them all meanwhile)."""
    refused = refusal_of(outcome)
    if refused is not None:
        raise ToolError(refused)
    slot = call_slot.get()
    if slot is None or slot.held:
        return
    if not await slot.claim():
        raise ToolError(
            f"this caller already has {slot.limit} generate_image call(s) running, the most allowed "
            "(WIRO_HTTP_MAX_RUNNING); nothing was started: try again when one ends"
        )
