"""The spend limits the person sets: ``WIRO_MAX_TASK_USD`` for one task, ``WIRO_BUDGET_USD`` a day.

Before ``Run``, what this key spent today (the real cost of its finished tasks), plus what its
running tasks may still cost (their estimates), plus what tasks about to start have reserved,
plus this task's estimate must stay within the budget. The check and the reservation are one
write transaction in the task journal, so server processes sharing the journal cannot both take
the last dollars. The reservation becomes the task's journaled estimate when Wiro accepts it,
and is given back when nothing was started; one whose fate is unknown (Run's answer was lost)
is kept until it expires.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from .config import Settings
from .journal import Spend, TaskJournal
from .pricing import CostEstimate

__all__ = ["BudgetError", "DaySpend", "Spend", "by_day", "day_start", "reserve", "today", "totals"]


class BudgetError(Exception):
    """Why a task may not start, in one line naming the numbers and the setting to change."""


def _local(now: float | None) -> datetime:
    return datetime.fromtimestamp(time.time() if now is None else now).astimezone()


def day_start(now: float | None = None) -> float:
    """Local midnight of the day ``now`` (a ``time.time()`` value) falls in."""
    return _local(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.1 else f"${value:.4f}"


async def today(journal: TaskJournal, owner: str) -> Spend:
    """What ``owner`` has spent and holds today."""
    return await journal.spend(owner, day_start())


async def reserve(
    journal: TaskJournal, settings: Settings, owner: str, estimate: CostEstimate, count: int = 1
) -> str | None:
    """Check the limits for ``count`` more tasks of ``estimate`` each and hold their sum, in one
    transaction; the reservation's id, or None when no daily budget is set. Raises
    :class:`BudgetError` with nothing held: a set that only partly fits is refused whole, saying
    how many would fit."""
    usd = estimate.usd
    limited = settings.budget_usd is not None or settings.max_task_usd is not None
    if limited and usd is None:
        setting = "WIRO_BUDGET_USD" if settings.budget_usd is not None else "WIRO_MAX_TASK_USD"
        raise BudgetError(
            f"{setting} is set, but what this task would cost is not known ({estimate.basis}), so it "
            f"was not started; unset {setting} to start tasks without a known price"
        )
    if usd is not None and settings.max_task_usd is not None and usd > settings.max_task_usd:
        raise BudgetError(
            f"this task is estimated at {_usd(usd)} ({estimate.basis}), more than WIRO_MAX_TASK_USD "
            f"({_usd(settings.max_task_usd)}); nothing was started: raise WIRO_MAX_TASK_USD to allow it"
        )
    budget = settings.budget_usd
    if budget is None or usd is None:
        return None
    reservation = uuid.uuid4().hex
    refused = await journal.hold(reservation, owner, usd * count, budget, day_start())
    if refused is not None:
        left = max(0.0, budget - refused.finished - refused.held)
        if count == 1:
            asked, fit = f"this task is estimated at {_usd(usd)} ({estimate.basis})", ""
        else:
            fits = min(count - 1, int((left + 1e-9) // usd)) if usd > 0 else 0
            each = f"{_usd(usd * count)} ({_usd(usd)} each, {estimate.basis})"
            asked = f"these {count} tasks are estimated at {each}, and {fits} of them fit"
            fit = f"ask for {fits}, or " if fits else ""
        raise BudgetError(
            f"WIRO_BUDGET_USD is {_usd(budget)} a day: {_usd(refused.finished)} spent today, "
            f"{_usd(refused.held)} held by {refused.running} running or starting task(s), {_usd(left)} "
            f"left, and {asked}; nothing was started: {fit}raise WIRO_BUDGET_USD to allow it, or wait "
            "for tomorrow"
        )
    return reservation


@dataclass(frozen=True)
class DaySpend:
    day: str
    usd: float
    tasks: int


def month_start(now: float | None = None) -> float:
    """Local midnight of the first day of the month ``now`` falls in."""
    return _local(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


async def by_day(journal: TaskJournal, owner: str, days: int = 31) -> list[DaySpend]:
    """What ``owner``'s finished tasks cost, per local day, newest first, over the last ``days``."""
    since = min(day_start() - (days - 1) * 86_400, month_start())
    usd: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for created, cost in await journal.finished_costs(owner, since):
        day = _local(created).strftime("%Y-%m-%d")
        usd[day] += cost
        count[day] += 1
    return [DaySpend(day=day, usd=usd[day], tasks=count[day]) for day in sorted(usd, reverse=True)]


async def totals(journal: TaskJournal, owner: str) -> tuple[float, float]:
    """(today, this month): what ``owner``'s finished tasks cost, in USD."""
    return totals_of(await by_day(journal, owner))


def totals_of(days: list[DaySpend]) -> tuple[float, float]:
    """(today, this month) from the per-day spend :func:`by_day` reads."""
    today_key = _local(None).strftime("%Y-%m-%d")
    month_key = today_key[:7]
    return (
        sum(d.usd for d in days if d.day == today_key),
        sum(d.usd for d in days if d.day.startswith(month_key)),
    )
