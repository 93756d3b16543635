"""Starting paid tasks: the spend limits checked and held, Run sent once, and the task journaled
the moment Wiro accepted it (for one task, and for each of a set)."""

import logging
from typing import Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from ..budget import BudgetError, reserve
from ..journal import JournalUnavailableError
from ..pricing import CostEstimate
from ..state import AppState
from ..wiro.client import WiroClient
from ..wiro.errors import WiroError, WiroRunUnknownError
from ..wiro.models import RunReceipt, Task
from ..wiro.seedream import SeedreamInputs
from .common import left, tool_error

log = logging.getLogger(__name__)


class MayHaveStartedError(ToolError):
    """Run's request reached Wiro but its outcome is unknown: what it held stays held."""


def may_have_started(reason: str, taskid: str | None = None) -> MayHaveStartedError:
    """The answer when Run's request reached Wiro but its outcome is unknown."""
    which = f" (task {taskid})" if taskid else ""
    log.warning("Run's outcome is unknown%s: %s", which, reason)
    return MayHaveStartedError(
        f"Wiro did not confirm that the task started: {reason}. The request reached Wiro, so a paid "
        f"task may have started all the same{which}. It was not sent again, so that nothing is paid "
        "for twice: do not call generate_image again for this image before looking at the task list "
        "of your project in the Wiro dashboard (a task that ran shows there with its image)."
    )


async def _look_for(client: WiroClient, exc: WiroRunUnknownError, until: float) -> Task | None:
    """The task a broken Run answer named (by id or token), if Wiro knows it."""
    if not exc.taskid and not exc.token:
        return None
    with anyio.move_on_after(left(until)):
        try:
            if exc.taskid:
                return await client.detail(taskid=exc.taskid)
            return await client.detail(tasktoken=exc.token)
        except WiroError as lookup:
            log.warning("the task named by a broken Run answer could not be looked up: %s", lookup)
    return None


async def hold(state: AppState, estimate: CostEstimate, count: int = 1) -> str | None:
    """Check the spend limits for ``count`` tasks and hold their estimate (see :func:`.budget.reserve`)."""
    try:
        return await reserve(state.journal, state.settings, state.owner, estimate, count)
    except BudgetError as exc:
        raise ToolError(str(exc)) from exc
    except JournalUnavailableError as exc:
        raise ToolError(f"{exc}: the spend limits cannot be counted, so nothing was started") from exc


async def start(
    state: AppState, inputs: SeedreamInputs, until: float, estimate: CostEstimate
) -> tuple[RunReceipt, list[str]]:
    """Check the spend limits, send Run once and journal the task it started. Call this shielded
    from cancellation: once Run is sent, its answer carries the id of a paid task, needed to stop
    it and never to lose it.
    """
    reservation = await hold(state, estimate)
    try:
        return await run_once(state, inputs, until, estimate, reservation)
    except MayHaveStartedError:
        raise
    except ToolError:
        if reservation is not None:  # refused: nothing was started, nothing is held
            await state.journal.release(reservation)
        raise


async def run_once(
    state: AppState,
    inputs: SeedreamInputs,
    until: float,
    estimate: CostEstimate,
    reservation: str | None,
    journaled: dict[str, Any] | None = None,
) -> tuple[RunReceipt, list[str]]:
    """Send Run once and journal the task it started (its inputs, or ``journaled``), turning the
    reservation (when given) into the task's estimate. Raises :class:`ToolError` when Wiro refused
    (nothing started) and :class:`MayHaveStartedError` when its answer is not known."""
    client = state.client()
    warnings: list[str] = []
    receipt: RunReceipt | None = None
    with anyio.move_on_after(left(until)):
        try:
            receipt = await client.run(inputs)
        except WiroRunUnknownError as exc:
            found = await _look_for(client, exc, until)
            if found is None:
                raise may_have_started(str(exc), exc.taskid) from exc
            receipt = RunReceipt(taskid=found.id, socketaccesstoken=found.socketaccesstoken)
            warnings.append(
                f"Wiro's answer to Run was broken ({exc}); the task was found by asking Wiro for it"
            )
        except WiroError as exc:
            raise tool_error(exc, "start the task") from exc
    if receipt is None:
        raise may_have_started("Wiro did not answer the Run request in time")
    # From here on the task exists and is paid for: the journal has it before anything else.
    await state.journal.accepted(
        receipt.taskid,
        receipt.socketaccesstoken,
        journaled or inputs.to_wire(),
        state.owner,
        estimate=estimate.usd,
        reservation=reservation,
    )
    return receipt, warnings
