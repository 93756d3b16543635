"""The task socket (``/v1/socket``): after ``{"type": "task_info", "tasktoken": ...}`` it pushes
``{type, id, tasktoken, message, result}`` frames as the task moves, then closes, as
``wss://socket.wiro.ai/v1`` does."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from .dialect import DOCS, GREETING, interim_frames, progress_message
from .reference import Status
from .tasks import EmulatedTask

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from .project import WiroEmulator

log = logging.getLogger(__name__)

# What a misbehaving task socket sends before the real frames.
_JUNK_FRAMES = (
    "this is not JSON",
    "[1, 2, 3]",
    '{"type": "task_banana", "message": null}',
    '{"type": "task_output", "message": {"percentage": "NaN"}}',
    '{"type": 7}',
)


async def serve_socket(emulator: WiroEmulator, ws: WebSocket) -> None:
    if not emulator.socket:
        await ws.close()  # before accept: the upgrade is refused
        return
    await ws.accept()
    emulator.socket_sessions += 1
    fault = emulator.fault("/socket")
    try:
        if fault is not None and fault.kind == "close":
            await ws.receive_json()
            await ws.close()
            return
        if fault is not None and fault.kind == "garbage":
            for junk in _JUNK_FRAMES:
                await ws.send_text(junk)
        await _push_events(emulator, ws, str(ws.base_url).rstrip("/").replace("ws", "http", 1))
    except Exception:  # a client that goes away is normal here
        log.debug("emulator: socket session ended", exc_info=True)


async def _push_events(emulator: WiroEmulator, ws: WebSocket, base: str) -> None:
    """Send each status of the subscribed task as it happens, then close (Wiro's protocol)."""
    if emulator.dialect == DOCS:
        await ws.send_json(GREETING)
    hello = await ws.receive_json()
    token = str(hello.get("tasktoken", "")) if isinstance(hello, dict) else ""
    task = next((t for t in emulator.tasks.values() if t.token == token), None)
    if task is None or hello.get("type") != "task_info":
        await ws.send_json({"type": "error", "message": "Task not found.", "result": False})
        await ws.close()
        return
    # Completes when the client goes away; a Kill or Cancel sets task.changed.
    gone = asyncio.ensure_future(ws.receive())
    task.changed = task.changed or asyncio.Event()
    try:
        await _push_until_end(emulator, ws, task, base, gone, task.changed)
    finally:
        gone.cancel()


async def _push_until_end(
    emulator: WiroEmulator,
    ws: WebSocket,
    task: EmulatedTask,
    base: str,
    gone: asyncio.Future[Any],
    changed: asyncio.Event,
) -> None:
    sent = 0  # how many steps of the schedule were pushed
    percent_sent = -1
    while True:
        now = emulator.clock()
        status = task.status(now)
        if status == Status.CANCEL:
            await ws.send_json(_frame(task, Status.CANCEL, None))
            break
        while sent < len(task.schedule) and task.schedule[sent][0] <= now - task.created:
            step = task.schedule[sent][1]
            message = emulator.render(task, base)["outputs"] if step == Status.POSTPROCESS_END else None
            await ws.send_json(_frame(task, step, message))
            sent += 1
        if status == Status.OUTPUT:
            percent = math.floor(task.progress(now) * 10) * 10
            if percent > percent_sent:
                percent_sent = percent
                progress = {"percentage": str(percent), "stepCurrent": percent // 10, "stepTotal": 10}
                if emulator.dialect == DOCS:
                    await ws.send_json(_frame(task, Status.OUTPUT, progress_message(progress)))
                    for frame in interim_frames(task.id, task.token, percent):
                        await ws.send_json(frame)
                else:
                    await ws.send_json(_frame(task, Status.OUTPUT, progress))
        if status in Status.TERMINAL:
            break
        waiter = asyncio.ensure_future(changed.wait())
        done, _ = await asyncio.wait({gone, waiter}, timeout=max(0.0, _next_event(task, now) - now))
        waiter.cancel()
        changed.clear()
        if gone in done:
            return
    await ws.close()


def _next_event(task: EmulatedTask, now: float) -> float:
    """When the socket has something new to say: the next status, or the next 10% of output."""
    upcoming = [task.created + offset for offset, _ in task.schedule if task.created + offset > now]
    start, end = task.at(Status.START), task.at(Status.END)
    if start is not None and end is not None and start <= now < end:
        tenth = (end - start) / 10
        upcoming.append(start + (math.floor((now - start) / tenth) + 1) * tenth + 1e-6)
    return min(upcoming, default=now)


def _frame(task: EmulatedTask, kind: str, message: Any) -> dict[str, Any]:
    return {"type": kind, "id": task.id, "tasktoken": task.token, "message": message, "result": True}
