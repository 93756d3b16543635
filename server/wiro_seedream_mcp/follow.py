"""Follow one task until it ends or a deadline passes, and stop it when the wait is abandoned.

Two sources of news run side by side:

* Wiro's task socket pushes every status change (and progress during ``task_output``) the
  moment it happens;
* ``Task/Detail`` polls: once a second for the first half minute, then slower, when there is
  no socket; every few seconds as a safety net while the socket is up.

Whatever the socket says, the answer handed back is always one ``Task/Detail`` record: the
socket only says when to ask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx2 as httpx

from .wiro.client import WiroClient
from .wiro.errors import WiroError
from .wiro.models import Task, TaskStatus

log = logging.getLogger(__name__)

# Poll-only schedule: (seconds since the wait began, interval until then).
POLL_SCHEDULE = ((30.0, 1.0), (120.0, 2.0))
POLL_SLOWEST = 5.0
# While the socket is up, Detail is asked this often, in case an event is lost.
SAFETY_NET_INTERVAL = 5.0
# How long a Cancel/Kill of an abandoned task may take before the call ends anyway.
STOP_TIMEOUT = 5.0
# How long past its wait a follow may take to finish a Detail call already under way.
DETAIL_GRACE = 3.0

PROGRESS_TOTAL = 100.0
_STAGES: dict[str, tuple[float, str]] = {
    TaskStatus.QUEUE: (2, "queued"),
    TaskStatus.ACCEPT: (8, "starting"),
    TaskStatus.PREPROCESS_START: (10, "starting"),
    TaskStatus.PREPROCESS_END: (12, "starting"),
    TaskStatus.ASSIGN: (15, "starting"),
    TaskStatus.START: (20, "generating"),
    TaskStatus.OUTPUT: (25, "generating"),
    TaskStatus.OUTPUT_FULL: (85, "generating 100%"),
    TaskStatus.END: (88, "saving"),
    TaskStatus.POSTPROCESS_START: (92, "saving"),
    TaskStatus.POSTPROCESS_END: (100, "done"),
}

OnProgress = Callable[[float, str], Awaitable[None]]
OnTask = Callable[[Task], Awaitable[None]]


def poll_intervals() -> Iterator[float]:
    """Seconds between Detail calls when there is no socket: never more than one a second."""
    waited = 0.0
    while True:
        interval = next((step for until, step in POLL_SCHEDULE if waited < until), POLL_SLOWEST)
        waited += interval
        yield interval


def left(until: float | None) -> float:
    """Seconds until ``until`` (on anyio's clock), never below zero; no limit for None."""
    return math.inf if until is None else max(0.0, until - anyio.current_time())


def _order(status: str) -> int:
    """Where a status stands in the lifecycle; -1 for one outside it."""
    try:
        return TaskStatus.LIFECYCLE.index(status)
    except ValueError:
        return -1


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in a (possibly nested) exception group."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup) and found.exceptions:
        found = found.exceptions[0]
    return found


def stage(status: str, percentage: float | None = None) -> tuple[float, str] | None:
    """(progress out of 100, words) for a status; None for statuses that say nothing new."""
    if status == TaskStatus.OUTPUT and percentage is not None:
        pct = min(100.0, max(0.0, percentage))
        return 20 + 0.65 * pct, f"generating {math.floor(pct)}%"
    return _STAGES.get(status)


def _percentage(message: Any) -> float | None:
    if isinstance(message, str) and message.lstrip().startswith("{"):
        # Progress sent as a JSON string rather than an object (as some of Wiro's clients see it).
        with contextlib.suppress(ValueError):
            message = json.loads(message)
    if isinstance(message, dict):
        message = message.get("percentage")
    try:
        value = float(str(message).strip().rstrip("%"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class TaskFollower:
    """Watches one task: ``await follower.wait(seconds)`` returns its latest Detail record.

    ``status`` is the last status seen from any source, for a caller that must stop the task.
    """

    def __init__(
        self,
        client: WiroClient,
        taskid: str,
        *,
        token: str | None = None,
        socket_url: str | None = None,
        on_progress: OnProgress | None = None,
        on_task: OnTask | None = None,
        status: str = TaskStatus.QUEUE,
    ) -> None:
        self.client = client
        self.taskid = taskid
        self.token = token
        self.socket_url = socket_url
        self.status = status
        self.detail_calls = 0
        self.socket_live = False
        # The latest Detail record, and what went wrong without ending the follow.
        self.latest: Task | None = None
        self.warnings: list[str] = []
        self._on_progress = on_progress
        self._on_task = on_task
        self._progress = -1.0
        self._message = ""
        self._changed = anyio.Event()
        self._check = False

    async def wait(self, seconds: float) -> Task:
        """The task's Detail record once it ended or ``seconds`` passed.

        A failure of the Detail calls is raised as itself (a :class:`WiroError`), never wrapped
        in an exception group, so callers see Wiro's own reason.
        """
        deadline = anyio.current_time() + max(0.0, seconds)
        with anyio.move_on_after(max(0.0, seconds) + DETAIL_GRACE):
            try:
                async with anyio.create_task_group() as tg:
                    if self.socket_url and self.token:
                        tg.start_soon(self._listen, self.socket_url, self.token)
                    task = await self._poll(deadline)
                    tg.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                raise first_error(group) from None
            return task
        # A Detail call was still under way at the deadline (a slow or stalled answer).
        log.warning("task %s: Wiro did not answer a status check in time", self.taskid)
        self.warnings.append(
            "Wiro did not answer a status check in time; the status shown is the last one seen"
        )
        return self.latest or Task(id=self.taskid, socketaccesstoken=self.token or "", status=self.status)

    async def note(self, status: str, percentage: float | None = None) -> None:
        """Take in a status; report progress when it moves forward (it never goes back).

        A status older than one already seen (a late socket frame racing a poll) changes nothing.
        """
        if status in _STAGES and _order(status) >= _order(self.status):
            self.status = status
        step = stage(status, percentage)
        if step is None or self._on_progress is None:
            return
        value, message = step
        if value < self._progress or (value == self._progress and message == self._message):
            return
        self._progress, self._message = value, message
        await self._on_progress(value, message)

    def _wake(self, *, check: bool) -> None:
        """Tell the poller something changed; ``check`` asks it for a Detail call right away."""
        self._check = self._check or check
        self._changed.set()

    async def _poll(self, deadline: float) -> Task:
        intervals = poll_intervals()
        while True:
            await self._until_due(deadline, intervals)
            task = await self.client.detail(taskid=self.taskid)
            self.detail_calls += 1
            self.latest = task
            await self.note(task.status)
            if self._on_task is not None:
                await self._on_task(task)
            if task.done or anyio.current_time() >= deadline:
                return task

    async def _until_due(self, deadline: float, intervals: Iterator[float]) -> None:
        """Sleep until the next Detail is due, the deadline, or a request to check now."""
        began = anyio.current_time()
        poll_interval: float | None = None
        while True:
            if self.socket_live:
                due = began + SAFETY_NET_INTERVAL
            else:
                poll_interval = poll_interval or next(intervals)
                due = began + poll_interval
            now = anyio.current_time()
            with anyio.move_on_after(max(0.0, min(due, deadline) - now)):
                await self._changed.wait()
            self._changed = anyio.Event()
            if self._check or anyio.current_time() >= min(due, deadline):
                self._check = False
                return

    async def _listen(self, url: str, token: str) -> None:
        from httpx2.websockets import AsyncWebSocketClient, HTTPXWSException

        try:
            sockets = AsyncWebSocketClient(self.client.http, keepalive_ping_interval_seconds=20)
            async with sockets.connect(url) as ws:
                await ws.send_json({"type": "task_info", "tasktoken": token})
                self.socket_live = True
                self._wake(check=False)  # the poller slows to the safety-net pace
                while await self._on_frame(await ws.receive_json()):
                    pass
        except* (HTTPXWSException, httpx.HTTPError, OSError, ValueError, TimeoutError) as group:
            log.info("task %s: no task socket (%r); following by polling", self.taskid, group.exceptions[0])
        finally:
            if self.socket_live:
                self.socket_live = False
                # Events may have been missed while the socket went down: ask Detail now.
                self._wake(check=True)

    async def _on_frame(self, frame: Any) -> bool:
        """Handle one socket frame; False once the task has ended and the socket can close."""
        if not isinstance(frame, dict):
            return True
        kind = str(frame.get("type", ""))
        if kind == TaskStatus.ERROR:
            # Wiro also sends task_error for log lines of a task that still runs: ask Detail.
            self._wake(check=True)
            return True
        percentage = _percentage(frame.get("message")) if kind == TaskStatus.OUTPUT else None
        await self.note(kind, percentage)
        if kind in TaskStatus.TERMINAL:
            self.socket_live = False
            self._wake(check=True)
            return False
        return True


async def stop_task(client: WiroClient, taskid: str, status: str) -> Task | None:
    """Stop a task whose wait was abandoned, so it is not paid for: Cancel if queued, else Kill.

    The task may have moved on since ``status`` was seen, so the other call is tried when the
    first is refused. Never raises: what happened is logged.
    """
    calls: dict[str, Callable[[], Awaitable[Task]]] = {
        "Task/Cancel": lambda: client.cancel(taskid=taskid),
        "Task/Kill": lambda: client.kill(taskid=taskid),
    }
    order = ["Task/Cancel", "Task/Kill"] if status == TaskStatus.QUEUE else ["Task/Kill", "Task/Cancel"]
    for name in order:
        try:
            task = await calls[name]()
        except WiroError as exc:
            log.warning("task %s: %s refused: %s", taskid, name, exc)
            continue
        log.warning("task %s: the call was abandoned, so %s was sent; now %s", taskid, name, task.status)
        return task
    try:
        task = await client.detail(taskid=taskid)
    except WiroError as exc:
        log.error(
            "task %s could not be stopped or looked up (%s); it may still run and be billed", taskid, exc
        )
        return None
    if task.done:
        log.warning("task %s had already ended (%s) when it was to be stopped", taskid, task.status)
        return task
    log.error("task %s could not be stopped; it may still run and be billed", taskid)
    return task


async def stop_quietly(
    client: WiroClient, taskid: str, status: str, on_task: OnTask | None = None
) -> Task | None:
    """:func:`stop_task`, shielded from the cancellation that caused it and bounded in time.

    ``on_task`` records the answer (the journal), inside the same bound.
    """
    stopped: Task | None = None
    with anyio.move_on_after(STOP_TIMEOUT, shield=True) as scope:
        stopped = await stop_task(client, taskid, status)
        if stopped is not None and on_task is not None:
            await on_task(stopped)
    if scope.cancelled_caught:
        log.error("task %s: stopping it took longer than %g s; it may still run", taskid, STOP_TIMEOUT)
    return stopped
