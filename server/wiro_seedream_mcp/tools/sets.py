"""A set of images from one ``generate_image`` call (``count`` above 1): Seedream 3.0 makes one image
per task, so a set is that many tasks with consecutive seeds (random ones for seed 0).

Each task is journaled with its place in the set (``"set": {"id", "index", "of"}`` beside its
inputs), where ``id`` names the call (its inputs and count): the same call again finds the set, so
a retry pays for no task twice, and starts only what is missing (a task whose Run failed, or one
that ended without its image)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from ..follow import PROGRESS_TOTAL, OnProgress
from ..journal import JournalEntry, JournalUnavailableError
from ..state import AppState
from ..wiro.models import Task
from ..wiro.seedream import SEED_MAX, SeedreamInputs
from .common import reuse

log = logging.getLogger(__name__)

MOST = 4

Count = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=MOST,
        title="Count",
        description=(
            f"How many images to make, 1 to {MOST}: several are made at once as variations, with "
            "the seed given and the next ones (random seeds for seed 0), and returned in one answer "
            "that names each image's seed. Each image is a paid task of its own."
        ),
    ),
]


def seeds_for(seed: int, count: int) -> list[int]:
    """The seed given and the next ones (wrapping to 1 past the largest), or distinct random ones."""
    if seed != 0:
        return [(seed - 1 + k) % SEED_MAX + 1 for k in range(count)]
    picked: list[int] = []
    while len(picked) < count:
        drawn = secrets.randbelow(SEED_MAX) + 1
        if drawn not in picked:
            picked.append(drawn)
    return picked


def set_key(inputs: SeedreamInputs, count: int) -> str:
    """What names the call a set came from: its inputs (with the seed as given) and its count."""
    called = json.dumps({**inputs.to_wire(), "count": count}, sort_keys=True)
    return hashlib.sha256(called.encode()).hexdigest()[:20]


def journaled(inputs: SeedreamInputs, key: str, index: int, count: int) -> dict[str, Any]:
    """What the journal keeps as one task's inputs: what Run was sent, and its place in the set."""
    return {**inputs.to_wire(), "set": {"id": key, "index": index, "of": count}}


def place_of(entry: JournalEntry) -> tuple[str, int, int] | None:
    """A journaled task's set (id, index, size), if it belongs to one."""
    mark = entry.parameters.get("set") if isinstance(entry.parameters, dict) else None
    if not isinstance(mark, dict):
        return None
    try:
        return str(mark["id"]), int(mark["index"]), int(mark["of"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class SetPlan:
    """The tasks of one call's set: those already started and still good, and the seeds of all."""

    key: str
    seeds: list[int]
    tasks: list[Task | None]
    reused: list[int] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [k for k, task in enumerate(self.tasks) if task is None]


async def plan_set(
    state: AppState, inputs: SeedreamInputs, count: int, *, new_task: bool, until: float
) -> SetPlan:
    """The set this call makes: the one the same call started within the reuse window (each of its
    tasks as Wiro has it now, and seeds kept), with what it lacks to be started, or a new one."""
    key = set_key(inputs, count)
    plan = SetPlan(key, seeds_for(inputs.seed, count), [None] * count)
    window = state.settings.reuse_window
    if new_task or window <= 0:
        return plan
    try:
        recent = await state.journal.started_since(time.time() - window, state.owner)
    except JournalUnavailableError as exc:
        log.warning("%s", exc)
        return plan
    found: dict[int, JournalEntry] = {}
    for entry in recent:  # newest first: the newest task in each place
        place = place_of(entry)
        if place is not None and place[0] == key and place[2] == count and 0 <= place[1] < count:
            found.setdefault(place[1], entry)
    for index, entry in sorted(found.items()):
        seed = entry.parameters.get("seed")
        if isinstance(seed, int):
            plan.seeds[index] = seed
        task = await reuse(state, entry, until)
        if task is not None:
            plan.tasks[index] = task
            plan.reused.append(index)
    return plan


class SetProgress:
    """One progress stream for a set: the mean of its tasks' progress, with how many are done."""

    def __init__(self, ctx: Context[AppState], size: int) -> None:
        self.ctx = ctx
        self.size = size
        self.values: dict[int, float] = {}
        self.ended: set[int] = set()
        self.sent = 0.0

    def of(self, index: int) -> OnProgress:
        async def report(value: float, message: str) -> None:
            # Short of the whole until the task has ended, so the last step says all are done.
            value = min(value, PROGRESS_TOTAL * 0.99)
            self.values[index] = max(self.values.get(index, 0.0), value)
            await self._send(f"image {index + 1}: {message}")

        return report

    async def ended_one(self, index: int) -> None:
        self.values[index] = PROGRESS_TOTAL
        self.ended.add(index)
        await self._send(f"image {index + 1} ended")

    async def _send(self, message: str) -> None:
        mean = sum(self.values.values()) / self.size
        if mean <= self.sent:  # progress only ever goes up
            return
        self.sent = mean
        await self.ctx.report_progress(
            mean, PROGRESS_TOTAL, f"{len(self.ended)} of {self.size} done; {message}"
        )
