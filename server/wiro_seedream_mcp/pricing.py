"""What a task will cost, before it starts.

The price comes from Wiro's catalogue (``Tool/Detail``: the model's ``dynamicprice`` list, else
its ``approximatelycost``, else its ``cps``), read once per process and kept for an hour; when
Wiro cannot say, from the average real ``totalcost`` of this key's recent finished tasks in the
journal. Every estimate says which of these it came from. Looking the price up never blocks
start-up and never holds a call for long: it is bounded, and a failed lookup is not retried
for a few minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio
from pydantic import BaseModel, Field

from .journal import JournalUnavailableError, TaskJournal
from .wiro.errors import WiroAuthError, WiroError
from .wiro.models import PriceRule, ToolRecord
from .wiro.seedream import SeedreamInputs

log = logging.getLogger(__name__)

# Seedream 3.0 takes roughly 5 to 20 s end to end; a price per second is taken times this.
TYPICAL_SECONDS = 10.0
# How long a price read from Wiro is trusted, how long a failed lookup is not retried, and the
# longest a call waits for the lookup.
PRICE_TTL, RETRY_AFTER_FAILURE, LOOKUP_DEADLINE = 3600.0, 300.0, 3.0
# How many recent finished tasks the journal's average is taken over.
RECENT_TASKS = 20

FROM_WIRO, FROM_JOURNAL, UNKNOWN = "wiro-price-list", "recent-tasks", "unknown"


class CostEstimate(BaseModel):
    """What a task is expected to cost, and where that figure comes from."""

    usd: float | None = Field(description="The expected charge in US dollars; null when unknown.")
    source: str = Field(
        description=f"{FROM_WIRO!r} (Wiro's price for the model), {FROM_JOURNAL!r} (the average of "
        f"recent finished tasks) or {UNKNOWN!r}."
    )
    basis: str = Field(description="How the figure was reached, in words.")


def _dollars(value: float) -> str:
    return f"${Decimal(str(round(value, 6))).normalize():f}"


def _applies(rule: PriceRule, wire: Mapping[str, Any]) -> bool:
    return all(str(wire.get(name, "")) == str(value) for name, value in (rule.inputs or {}).items())


def from_price_list(tool: ToolRecord, inputs: SeedreamInputs) -> CostEstimate | None:
    """The estimate Wiro's catalogue record gives for ``inputs``, if it gives one."""
    wire = inputs.to_wire()
    rules = sorted((r for r in tool.dynamicprice if _applies(r, wire)), key=lambda r: not r.inputs)
    for rule in rules:
        # A price with no method is a price per request (Wiro's own Tool/List example has none).
        price, method = float(rule.price), rule.priceMethod or "cpr"
        if method in ("cpr", "cpo"):  # one request, one output
            unit = "request" if method == "cpr" else "image"
            return CostEstimate(
                usd=price, source=FROM_WIRO, basis=f"Wiro's price: {_dollars(price)} per {unit}"
            )
        if method == "cp-pixel":
            width, height = (int(n) for n in inputs.size.split("x"))
            return CostEstimate(
                usd=price * width * height,
                source=FROM_WIRO,
                basis=f"Wiro's price: {_dollars(price * 1_000_000)} per million pixels, {inputs.size}",
            )
        if method == "cps":
            return _per_second(price)
    if tool.approximatelycost is not None and tool.approximatelycost > 0:
        usd = float(tool.approximatelycost)
        return CostEstimate(
            usd=usd, source=FROM_WIRO, basis=f"Wiro's estimate: about {_dollars(usd)} per run"
        )
    if tool.cps is not None and tool.cps > 0:
        return _per_second(float(tool.cps))
    return None


def _cost(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _per_second(price: float) -> CostEstimate:
    return CostEstimate(
        usd=price * TYPICAL_SECONDS,
        source=FROM_WIRO,
        basis=f"Wiro's price: {_dollars(price)} per second, times about {TYPICAL_SECONDS:g} s",
    )


@dataclass
class PriceBook:
    """The model's price for one server process."""

    lookup: Callable[[], Awaitable[ToolRecord]] | None
    journal: TaskJournal
    clock: Callable[[], float] = time.monotonic
    _tool: ToolRecord | None = None
    _until: float = 0.0

    async def _record(self) -> ToolRecord | None:
        if self.lookup is None or self.clock() < self._until:
            return self._tool
        try:
            with anyio.fail_after(LOOKUP_DEADLINE):
                self._tool = await self.lookup()
            self._until = self.clock() + PRICE_TTL
        except WiroAuthError as exc:
            # The caller's credentials were refused, not the price withheld: the price is the
            # model's, so the next caller (with credentials of its own) asks again.
            log.warning("the model's price could not be read with this caller's credentials (%s)", exc)
        except (WiroError, TimeoutError) as exc:
            log.warning("the model's price could not be read from Wiro (%s); estimating from past tasks", exc)
            self._until = self.clock() + RETRY_AFTER_FAILURE
        return self._tool

    async def estimate(self, inputs: SeedreamInputs, owner: str) -> CostEstimate:
        tool = await self._record()
        found = from_price_list(tool, inputs) if tool is not None else None
        return found or await self._from_journal(owner)

    async def _from_journal(self, owner: str) -> CostEstimate:
        try:
            entries = await self.journal.started_since(0.0, owner, limit=RECENT_TASKS * 5)
        except JournalUnavailableError:
            entries = []
        costs = [c for c in (_cost(e.cost) for e in entries if e.succeeded) if c > 0][:RECENT_TASKS]
        if not costs:
            return CostEstimate(
                usd=None, source=UNKNOWN, basis="Wiro gave no price and no past task cost is known"
            )
        usd = sum(costs) / len(costs)
        return CostEstimate(
            usd=usd,
            source=FROM_JOURNAL,
            basis=f"the average real cost of the last {len(costs)} finished task(s): {_dollars(usd)}",
        )
