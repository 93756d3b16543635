"""Task updates by subscription: a host that shows tasks subscribes to ``wiro://tasks/{taskid}``
(``resources/subscribe``, or ``subscriptions/listen`` on the 2026-07-28 wire) and is sent
``notifications/resources/updated`` as the task moves (queued, running, done, stopped), whether a
call is waiting for it or not.

A task a call follows is announced as its follower sees it move. A task no call follows any more
(started with ``wait: false``, or whose call ended before it did) that someone subscribed to is
followed here, in the background, by Detail every few seconds until it ends: Detail is free.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus

from .tasklog import client_of
from .wiro.errors import WiroError
from .wiro.models import Task

log = logging.getLogger(__name__)

PREFIX = "wiro://tasks/"
# How often a task no call follows is looked at, and for how long at most.
EVERY = 3.0
AT_MOST = 3600.0


def task_uri(taskid: str) -> str:
    return f"{PREFIX}{taskid}"


def taskid_of(uri: str) -> str | None:
    if not uri.startswith(PREFIX):
        return None
    taskid = uri.removeprefix(PREFIX).split("/", 1)[0]
    return taskid or None


class TaskWatch:
    """Who subscribed to which task, and the background looks at the tasks no call follows."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self.bus = bus
        self._subscribers: dict[str, weakref.WeakSet[Any]] = {}
        self._watched: set[str] = set()
        self._group: TaskGroup | None = None
        self._state: Any = None

    def start(self, group: TaskGroup, state: Any) -> None:
        self._group, self._state = group, state

    async def updated(self, taskid: str) -> None:
        """Tell every subscriber of the task that it changed."""
        uri = task_uri(taskid)
        await self.bus.publish(ResourceUpdated(uri=uri))
        for client in list(self._subscribers.get(uri, ())):
            try:
                await client.send_resource_updated(uri)
            except Exception:  # a client gone: it is forgotten with its session
                log.debug("a resource update could not be sent", exc_info=True)

    def _anyone_listens(self, taskid: str) -> bool:
        if self._subscribers.get(task_uri(taskid)):
            return True
        # subscriptions/listen streams (2026-07-28): the in-process bus knows whether any is open.
        return bool(getattr(self.bus, "_listeners", True))

    def follow(self, task: Task) -> None:
        """Follow a task no call follows any more, while someone subscribed to it."""
        if task.done or self._group is None or task.id in self._watched:
            return
        self._watched.add(task.id)
        self._group.start_soon(self._look, task)

    async def _look(self, task: Task) -> None:
        state, status = self._state, task.status
        try:
            with anyio.move_on_after(AT_MOST):
                while True:
                    await anyio.sleep(EVERY)
                    if not self._anyone_listens(task.id):
                        continue  # nobody to tell: no Detail is asked for
                    try:
                        task = await state.client().detail(taskid=task.id)
                    except WiroError as exc:  # keep looking
                        log.debug("task %s: a background look failed: %s", task.id, exc)
                        continue
                    if task.status != status:
                        status = task.status
                        await state.journal.update(task)
                        await self.updated(task.id)
                    if task.done:
                        return
        finally:
            self._watched.discard(task.id)

    # -- resources/subscribe and resources/unsubscribe (2025-11-25 and earlier) -----------

    def add(self, uri: str, session: Any) -> None:
        self._subscribers.setdefault(uri, weakref.WeakSet()).add(client_of(session))

    def remove(self, uri: str, session: Any) -> None:
        subscribers = self._subscribers.get(uri)
        if subscribers is not None:
            subscribers.discard(client_of(session))
