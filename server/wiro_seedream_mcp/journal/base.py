"""What the server asks of a task journal, whatever keeps it: the interface both backends build on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ..records import JournalEntry, Spend
from ..wiro.models import Task

# A budget reservation outlives any Run by far; one left behind (a crash before the journal heard
# back) stops counting after this long.
RESERVATION_TTL = 120.0


class JournalUnavailableError(Exception):
    """The journal could not be read; the message names where it is and the reason."""


class TaskJournal(ABC):
    """What the server asks of a journal. ``owner`` is whose tasks they are (a hash, see
    :attr:`..state.Caller.owner`); where a read takes ``owner=None``, it is not scoped."""

    # Set while writes fail, named in every answer; cleared by the next write that succeeds.
    write_problem: str | None = None
    # What a person can do when the journal cannot be read, for the answer that says so.
    advice: str = ""
    skipped_rows: int = 0

    @property
    @abstractmethod
    def where(self) -> str:
        """The journal's location, for messages (never a password)."""

    def warnings(self) -> list[str]:
        """What a person should know about the journal, for every answer; empty when all is well."""
        found: list[str] = []
        if self.write_problem:
            found.append(
                f"the task journal {self.where} cannot record tasks ({self.write_problem}): keep the task "
                "ids from these answers; list_tasks and restarts will not know them"
            )
        if self.skipped_rows:
            rows = f"{self.skipped_rows} row(s)"
            found.append(f"{rows} of the task journal {self.where} could not be read and were skipped")
        return found

    # -- tasks ---------------------------------------------------------------------------

    @abstractmethod
    async def accepted(
        self,
        taskid: str,
        token: str,
        parameters: dict[str, Any],
        owner: str = "",
        *,
        estimate: float | None = None,
        reservation: str | None = None,
    ) -> None:
        """Record a task the moment Wiro accepted it; ``estimate`` (what it is expected to cost)
        takes the place of the budget ``reservation`` made for it, in the same transaction."""

    @abstractmethod
    async def update(self, task: Task, *, error: str | None = None, owner: str | None = None) -> None:
        """Store the task's latest Detail record (status, outputs, cost). A task the journal does not
        have is recorded only with ``owner`` (it was seen by whose it is); no row is ever ownerless."""

    @abstractmethod
    async def saved(self, taskid: str, name: str, path: Path) -> None:
        """Remember where an output was saved."""

    @abstractmethod
    async def get(self, taskid: str, owner: str | None = None) -> JournalEntry | None: ...

    @abstractmethod
    async def by_token(self, token: str, owner: str | None = None) -> JournalEntry | None: ...

    @abstractmethod
    async def recent(self, limit: int = 20, owner: str | None = None) -> list[JournalEntry]:
        """The newest tasks first."""

    @abstractmethod
    async def started_since(self, when: float, owner: str, limit: int = 200) -> list[JournalEntry]:
        """Tasks of ``owner`` accepted at or after ``when`` (a ``time.time()`` value), newest first."""

    # -- spend ---------------------------------------------------------------------------

    @abstractmethod
    async def spend(self, owner: str, since: float) -> Spend:
        """What ``owner``'s tasks accepted since ``since`` cost and hold, with live reservations;
        raises :class:`JournalUnavailableError`."""

    @abstractmethod
    async def hold(
        self, reservation: str, owner: str, usd: float, budget: float, since: float
    ) -> Spend | None:
        """Reserve ``usd`` for a task about to start when the spend since ``since`` leaves room for it
        within ``budget``: None when held, else the spend that refused it. One transaction."""

    @abstractmethod
    async def release(self, reservation: str) -> None:
        """Give back a budget reservation whose task was never started."""

    @abstractmethod
    async def finished_costs(self, owner: str, since: float) -> list[tuple[float, float]]:
        """(accepted at, cost) of ``owner``'s finished tasks accepted since ``since``."""

    # -- calls running at once -----------------------------------------------------------

    @abstractmethod
    async def take_slot(self, slot: str, owner: str, limit: int, ttl: float) -> bool:
        """Hold one of ``owner``'s ``limit`` slots for a call (each lasts ``ttl`` s at most); False
        when all are held. One transaction."""

    @abstractmethod
    async def free_slot(self, slot: str) -> None: ...

    async def ready(self) -> bool:
        """Whether the journal can be read now (a load balancer's readiness); the embedded file is."""
        return True

    async def aclose(self) -> None:
        """Close connections; the journal opens them again if used later."""
        self.close()

    def close(self) -> None:  # noqa: B027 - most backends have nothing to close without waiting
        """Close what can be closed without waiting (the SQLite file)."""
