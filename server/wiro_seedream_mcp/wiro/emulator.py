"""A local stand-in for the Wiro API, for this one model.

It is a real HTTP server on 127.0.0.1 that answers like Wiro does:

* ``POST /v1/Run/bytedance/text-to-image-seedream-v3`` validates the inputs like Wiro and
  starts a task;
* ``POST /v1/Task/Detail`` / ``Task/Kill`` / ``Task/Cancel`` look after tasks;
* ``GET /cdn/<uuid>/0.png`` serves a real PNG of the requested size;
* ``/v1/socket`` is the task socket: after ``{"type": "task_info", "tasktoken": ...}`` it
  pushes ``{type, id, tasktoken, message, result}`` frames as the task moves, like
  ``wss://socket.wiro.ai/v1`` (``socket=False`` turns it off).

Every request is authenticated like a Wiro project: signature projects need ``x-api-key``,
``x-nonce`` and ``x-signature`` (and a nonce is never accepted twice), key-only projects
``x-api-key`` alone. The signature check here is its own HMAC construction from
``hashlib``, not the client's signer, so a bug in one cannot hide the other.

Tasks walk through the documented statuses on a clock (:class:`Timings`). A prompt that
contains ``[emulator:fail]`` ends with a non-zero exit and no output; one that contains
``[emulator:error]`` ends ``task_error`` before it runs.

Every request is recorded in :attr:`WiroEmulator.requests`, for tests, and
:meth:`WiroEmulator.inject` makes chosen requests fail the way a network or a gateway does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .models import TaskStatus
from .png import PNG_SIGNATURE, declared_png, gradient_png
from .seedream import ASPECT_RATIOS, MODEL_SLUG, dimensions

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

log = logging.getLogger(__name__)

DEFAULT_KEY = "emulator-key"
DEFAULT_SECRET = "emulator-secret"  # noqa: S105 - the emulator's own made-up project

FAIL_MARKER = "[emulator:fail]"
ERROR_MARKER = "[emulator:error]"

# Cost per second of the emulated model, in dollars.
COST_PER_SECOND = "0.003000000000"


@dataclass(frozen=True)
class Timings:
    """Seconds a task spends in each phase."""

    queue: float = 1.0
    prepare: float = 0.5
    generate: float = 2.0
    postprocess: float = 0.5

    @classmethod
    def instant(cls, scale: float = 0.001) -> Timings:
        """Millisecond timings for tests."""
        return cls(queue=20 * scale, prepare=10 * scale, generate=40 * scale, postprocess=10 * scale)

    @property
    def total(self) -> float:
        return self.queue + self.prepare + self.generate + self.postprocess


@dataclass
class Project:
    api_key: str = DEFAULT_KEY
    api_secret: str | None = DEFAULT_SECRET


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    outcome: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """Make the next ``times`` requests to a path ending in ``path`` misbehave.

    Before doing any work (nothing happened, and the answer says so, more or less):
    ``"503"``; ``"429"`` (with ``Retry-After``); ``"status"`` answers ``status`` with ``body``.

    After doing the work (it took effect, but the answer is broken, so the client cannot know):
    ``"502-after"`` (an HTML gateway error); ``"html"`` (a 200 HTML page); ``"truncated"`` (the
    first half of the JSON); ``"json-500"`` (500 with a JSON error list); ``"false-bare"``
    (``result: false``, no error); ``"false-with-ids"`` (the same, still naming the task);
    ``"wrong-types"`` (the documented keys with the wrong types); ``"no-pexit"`` (the task
    records without an exit code, like the reference's example); ``"other-task"`` (a Detail,
    Kill or Cancel answer about another task); ``"trickle"`` (the real answer, one byte every
    ``delay`` seconds); ``"slow"`` (the real answer after ``delay`` seconds).

    On the CDN (``path`` ``"/0.png"``): ``"503"``, ``"trickle"``, ``"drop"`` (half the image,
    then the connection closes), ``"redirect"`` (302 to ``body``), ``"huge-dims"`` (a PNG that
    declares 12000 x 12000 pixels), ``"fake-png"`` (PNG magic, then garbage).

    On the socket (``path`` ``"/socket"``): ``"garbage"`` (junk frames first, then the real
    ones) and ``"close"`` (closed right after the subscription).
    """

    path: str
    kind: str
    times: int = 1
    retry_after: str = "0"
    delay: float = 0.0
    status: int = 500
    body: Any = None


def _schedule(timings: Timings, failure: str | None) -> list[tuple[float, str]]:
    """(seconds after creation, status) for each step of the lifecycle."""
    q, p, g, pp = timings.queue, timings.prepare, timings.generate, timings.postprocess
    if failure == "error":
        return [(0.0, TaskStatus.QUEUE), (q, TaskStatus.ERROR)]
    return [
        (0.0, TaskStatus.QUEUE),
        (q, TaskStatus.ACCEPT),
        (q + p * 0.25, TaskStatus.PREPROCESS_START),
        (q + p * 0.5, TaskStatus.PREPROCESS_END),
        (q + p * 0.75, TaskStatus.ASSIGN),
        (q + p, TaskStatus.START),
        (q + p + g * 0.1, TaskStatus.OUTPUT),
        (q + p + g * 0.95, TaskStatus.OUTPUT_FULL),
        (q + p + g, TaskStatus.END),
        (q + p + g + pp * 0.5, TaskStatus.POSTPROCESS_START),
        (q + p + g + pp, TaskStatus.POSTPROCESS_END),
    ]


@dataclass
class EmulatedTask:
    id: str
    token: str
    uuid: str
    inputs: dict[str, Any]
    created: float  # monotonic
    created_wall: int
    schedule: list[tuple[float, str]]
    failure: str | None = None
    stopped: str | None = None  # "cancel" or "kill"
    stopped_at: float | None = None
    stopped_wall: int = 0
    png: Future[bytes] | None = None
    callbackurl: str = ""
    changed: asyncio.Event | None = None  # set on Kill/Cancel, for the socket

    def status(self, now: float) -> str:
        if self.stopped is not None:
            return TaskStatus.CANCEL
        elapsed = now - self.created
        current = self.schedule[0][1]
        for offset, status in self.schedule:
            if elapsed >= offset:
                current = status
        return current

    def at(self, status: str) -> float | None:
        for offset, step in self.schedule:
            if step == status:
                return self.created + offset
        return None

    def progress(self, now: float) -> float:
        start, end = self.at(TaskStatus.START), self.at(TaskStatus.END)
        if start is None or end is None or end <= start:
            return 0.0
        return min(1.0, max(0.0, (now - start) / (end - start)))


def _hmac_sha256_hex(key: bytes, message: bytes) -> str:
    """HMAC (RFC 2104) over SHA-256, built from hashlib alone."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


def _error(message: str, code: int = 0) -> dict[str, Any]:
    return {"result": False, "errors": [{"code": code, "message": message}]}


class _RefusedError(Exception):
    def __init__(self, message: str, code: int = 0, status: int = 200) -> None:
        super().__init__(message)
        self.body = _error(message, code)
        self.status = status


class WiroEmulator:
    """The state and behaviour of the emulated Wiro project; :meth:`app` serves it over HTTP."""

    def __init__(
        self,
        project: Project | None = None,
        timings: Timings | None = None,
        *,
        max_active: int | None = None,
        socket: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.project = project or Project()
        self.timings = timings or Timings()
        self.max_active = max_active
        self.socket = socket
        self.clock = clock
        self.tasks: dict[str, EmulatedTask] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.socket_sessions = 0
        self._seen_nonces: set[str] = set()
        # Pictures are drawn off the event loop while their task runs, as Wiro's workers do.
        self._painter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wiro-emulator-png")
        self._next_id = 100_000 + secrets.randbelow(800_000)
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------------------

    def inject(
        self,
        path: str,
        kind: str,
        times: int = 1,
        retry_after: str = "0",
        delay: float = 0.0,
        *,
        status: int = 500,
        body: Any = None,
    ) -> None:
        self.faults.append(Fault(path, kind, times, retry_after, delay, status, body))

    def _fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and path.endswith(fault.path):
                    fault.times -= 1
                    return fault
        return None

    def finished_at(self, taskid: str) -> float:
        """When the task reached its final status, on the emulator's clock."""
        task = self.tasks[taskid]
        if task.stopped_at is not None:
            return task.stopped_at
        return task.created + task.schedule[-1][0]

    def task_status(self, taskid: str) -> str:
        return self.tasks[taskid].status(self.clock())

    def count(self, path_suffix: str) -> int:
        """How many authenticated requests reached an endpoint, e.g. ``count("/Task/Kill")``."""
        return sum(1 for r in self.requests if r.path.endswith(path_suffix) and r.outcome != "unauthorized")

    def _active(self, now: float) -> int:
        return sum(1 for t in self.tasks.values() if t.status(now) not in TaskStatus.TERMINAL)

    # -- authentication ------------------------------------------------------------------

    def _authenticate(self, headers: dict[str, str]) -> None:
        key = headers.get("x-api-key")
        if not key or not secrets.compare_digest(key.encode(), self.project.api_key.encode()):
            raise _RefusedError("Project authorization is not valid.", status=401)
        secret = self.project.api_secret
        if secret is None:
            return
        nonce, signature = headers.get("x-nonce"), headers.get("x-signature")
        if not nonce or not signature:
            raise _RefusedError(
                "Project requires signature authentication. x-signature and x-nonce headers are required.",
                status=401,
            )
        expected = _hmac_sha256_hex(key.encode(), (secret + nonce).encode())
        if not secrets.compare_digest(expected.encode(), signature.encode()):
            raise _RefusedError("Project authorization is not valid.", status=401)
        with self._lock:
            if nonce in self._seen_nonces:
                raise _RefusedError("Project authorization is not valid. Nonce was already used.", status=401)
            self._seen_nonces.add(nonce)

    # -- endpoints -----------------------------------------------------------------------

    def run(self, model: str, body: dict[str, Any], base: str) -> dict[str, Any]:
        if model.lower() != MODEL_SLUG:
            raise _RefusedError("Model not found.", code=1, status=404)
        inputs = _validate_inputs(body)
        now = self.clock()
        if self.max_active is not None and self._active(now) >= self.max_active:
            raise _RefusedError(
                "Concurrent task limit reached for your balance. Please wait for running tasks to finish.",
                code=96,
            )
        prompt = str(inputs["prompt"])
        failure = "error" if ERROR_MARKER in prompt else "fail" if FAIL_MARKER in prompt else None
        with self._lock:
            taskid = str(self._next_id)
            self._next_id += 1
            task = EmulatedTask(
                id=taskid,
                token=secrets.token_urlsafe(22)[:30],
                uuid=str(uuid.uuid4()),
                inputs=inputs,
                created=now,
                created_wall=int(time.time()),
                schedule=_schedule(self.timings, failure),
                failure=failure,
                callbackurl=str(body.get("callbackUrl") or ""),
            )
            self.tasks[taskid] = task
        if failure is None:
            self._paint(task)
        log.info("emulator: task %s queued (%s)", taskid, inputs["size"])
        return {"errors": [], "taskid": taskid, "socketaccesstoken": task.token, "result": True}

    def _find(self, body: dict[str, Any], *fields: str) -> EmulatedTask:
        for name in fields:
            value = body.get(name)
            if value is None or str(value) == "":
                continue
            value = str(value)
            if name == "taskid":
                task = self.tasks.get(value)
            else:
                task = next((t for t in self.tasks.values() if t.token == value), None)
            if task is None:
                raise _RefusedError("There is no task yet.", code=1)
            return task
        raise _RefusedError(f"Request parameter [{fields[0]}] required")

    def detail(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        task = self._find(body, "taskid", "tasktoken")
        return {"total": "1", "errors": [], "tasklist": [self.render(task, base)], "result": True}

    def kill(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        task = self._find(body, "taskid", "socketaccesstoken", "tasktoken")
        now = self.clock()
        status = task.status(now)
        if status in TaskStatus.TERMINAL or status == TaskStatus.QUEUE:
            raise _RefusedError("Task is not in a killable state.", code=1)
        self._stop(task, "kill", now)
        return {"errors": [], "tasklist": [self.render(task, base)], "result": True}

    def cancel(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        task = self._find(body, "taskid", "tasktoken")
        now = self.clock()
        if task.status(now) != TaskStatus.QUEUE:
            raise _RefusedError("Task is not in a cancellable state.", code=1)
        self._stop(task, "cancel", now)
        return {"errors": [], "tasklist": [self.render(task, base)], "result": True}

    def _stop(self, task: EmulatedTask, how: str, now: float) -> None:
        task.stopped, task.stopped_at, task.stopped_wall = how, now, int(time.time())
        if task.changed is not None:
            task.changed.set()
        log.info("emulator: task %s stopped by %s", task.id, how)

    def output_png(self, task_uuid: str) -> bytes | None:
        task = next((t for t in self.tasks.values() if t.uuid == task_uuid), None)
        if task is None or task.status(self.clock()) != TaskStatus.POSTPROCESS_END or task.failure:
            return None
        return self._png(task)

    def _paint(self, task: EmulatedTask) -> Future[bytes]:
        width, height = dimensions(str(task.inputs["size"]))
        key = f"{task.inputs['prompt']}|{task.inputs['seed']}|{task.id}"
        task.png = self._painter.submit(gradient_png, width, height, key)
        return task.png

    def _png(self, task: EmulatedTask) -> bytes:
        return (task.png or self._paint(task)).result()

    def render(self, task: EmulatedTask, base: str) -> dict[str, Any]:
        """The task as Wiro's Detail shows it: strings for numbers, "" for none."""
        now = self.clock()
        status = task.status(now)

        def wall(status_name: str) -> str:
            at = task.at(status_name)
            if at is None or at > now or (task.stopped_at is not None and at > task.stopped_at):
                return "0"
            return str(task.created_wall + int(at - task.created))

        start = task.at(TaskStatus.START)
        end_at = task.stopped_at if task.stopped_at is not None else now
        ran = max(0.0, end_at - start) if start is not None and end_at > start else 0.0
        finished = status == TaskStatus.POSTPROCESS_END
        outputs: list[dict[str, Any]] = []
        pexit, debugerror, cost = "", "", "0"
        if finished and task.failure == "fail":
            pexit, debugerror = "1", "Emulated failure: the model process exited with code 1."
        elif finished:
            pexit = "0"
            png = self._png(task)
            outputs.append(
                {
                    "id": hashlib.md5(task.uuid.encode(), usedforsecurity=False).hexdigest(),
                    "name": "0.png",
                    "contenttype": "image/png",
                    "parentid": hashlib.md5(task.id.encode(), usedforsecurity=False).hexdigest(),
                    "uuid": task.uuid,
                    "size": str(len(png)),
                    "addedtime": wall(TaskStatus.END),
                    "modifiedtime": wall(TaskStatus.END),
                    "accesskey": secrets.token_urlsafe(22)[:30],
                    "url": f"{base}/cdn/{task.uuid}/0.png",
                }
            )
            cost = f"{ran * float(COST_PER_SECOND):.12f}"
        elif status == TaskStatus.ERROR:
            debugerror = "Emulated error: the task could not be started."
        elif status == TaskStatus.CANCEL and task.stopped == "kill":
            pexit = "0"
            cost = f"{ran * float(COST_PER_SECOND):.12f}"
        debugoutput = ""
        if status == TaskStatus.OUTPUT:
            debugoutput = f"{math.floor(task.progress(now) * 100)}%"
        return {
            "id": task.id,
            "uuid": task.uuid,
            "name": "",
            "socketaccesstoken": task.token,
            "parameters": dict(task.inputs),
            "debugoutput": debugoutput,
            "debugerror": debugerror,
            "starttime": wall(TaskStatus.START),
            "endtime": wall(TaskStatus.END),
            "elapsedseconds": f"{ran:.4f}",
            "status": status,
            "cps": COST_PER_SECOND,
            "totalcost": cost,
            "guestid": None,
            "projectid": "1",
            "modelid": "1",
            "description": "",
            "runtype": "model",
            "callbackurl": task.callbackurl,
            "createtime": str(task.created_wall),
            "canceltime": str(task.stopped_wall),
            "assigntime": wall(TaskStatus.ASSIGN),
            "accepttime": wall(TaskStatus.ACCEPT),
            "preprocessstarttime": wall(TaskStatus.PREPROCESS_START),
            "preprocessendtime": wall(TaskStatus.PREPROCESS_END),
            "postprocessstarttime": wall(TaskStatus.POSTPROCESS_START),
            "postprocessendtime": wall(TaskStatus.POSTPROCESS_END),
            "pexit": pexit,
            "categories": json.dumps(["tool", "text-to-image"]),
            "outputs": outputs,
            "size": str(sum(int(o["size"]) for o in outputs)),
        }

    # -- the task socket -------------------------------------------------------------------

    async def _push_events(self, ws: WebSocket, base: str) -> None:
        """Send each status of the subscribed task as it happens, then close (Wiro's protocol)."""
        hello = await ws.receive_json()
        token = str(hello.get("tasktoken", "")) if isinstance(hello, dict) else ""
        task = next((t for t in self.tasks.values() if t.token == token), None)
        if task is None or hello.get("type") != "task_info":
            await ws.send_json({"type": "error", "message": "Task not found.", "result": False})
            await ws.close()
            return
        # Completes when the client goes away; a Kill or Cancel sets task.changed.
        gone = asyncio.ensure_future(ws.receive())
        task.changed = task.changed or asyncio.Event()
        try:
            await self._push_until_end(ws, task, base, gone, task.changed)
        finally:
            gone.cancel()

    async def _push_until_end(
        self, ws: WebSocket, task: EmulatedTask, base: str, gone: asyncio.Future[Any], changed: asyncio.Event
    ) -> None:
        sent = 0  # how many steps of the schedule were pushed
        percent_sent = -1
        while True:
            now = self.clock()
            status = task.status(now)
            if status == TaskStatus.CANCEL:
                await ws.send_json(self._frame(task, TaskStatus.CANCEL, None))
                break
            while sent < len(task.schedule) and task.schedule[sent][0] <= now - task.created:
                step = task.schedule[sent][1]
                message = self.render(task, base)["outputs"] if step == TaskStatus.POSTPROCESS_END else None
                await ws.send_json(self._frame(task, step, message))
                sent += 1
            if status == TaskStatus.OUTPUT:
                percent = math.floor(task.progress(now) * 10) * 10
                if percent > percent_sent:
                    percent_sent = percent
                    progress = {"percentage": str(percent), "stepCurrent": percent // 10, "stepTotal": 10}
                    await ws.send_json(self._frame(task, TaskStatus.OUTPUT, progress))
            if status in TaskStatus.TERMINAL:
                break
            waiter = asyncio.ensure_future(changed.wait())
            done, _ = await asyncio.wait({gone, waiter}, timeout=max(0.0, self._next_event(task, now) - now))
            waiter.cancel()
            changed.clear()
            if gone in done:
                return
        await ws.close()

    def _next_event(self, task: EmulatedTask, now: float) -> float:
        """When the socket has something new to say: the next status, or the next 10% of output."""
        upcoming = [task.created + offset for offset, _ in task.schedule if task.created + offset > now]
        start, end = task.at(TaskStatus.START), task.at(TaskStatus.END)
        if start is not None and end is not None and start <= now < end:
            tenth = (end - start) / 10
            upcoming.append(start + (math.floor((now - start) / tenth) + 1) * tenth + 1e-6)
        return min(upcoming, default=now)

    @staticmethod
    def _frame(task: EmulatedTask, kind: str, message: Any) -> dict[str, Any]:
        return {"type": kind, "id": task.id, "tasktoken": task.token, "message": message, "result": True}

    # -- HTTP ----------------------------------------------------------------------------

    async def _serve_socket(self, ws: WebSocket) -> None:
        if not self.socket:
            await ws.close()  # before accept: the upgrade is refused
            return
        await ws.accept()
        self.socket_sessions += 1
        fault = self._fault("/socket")
        try:
            if fault is not None and fault.kind == "close":
                await ws.receive_json()
                await ws.close()
                return
            if fault is not None and fault.kind == "garbage":
                for junk in _JUNK_FRAMES:
                    await ws.send_text(junk)
            await self._push_events(ws, str(ws.base_url).rstrip("/").replace("ws", "http", 1))
        except Exception:  # a client that goes away is normal here
            log.debug("emulator: socket session ended", exc_info=True)

    async def _serve_cdn(self, request: Request) -> Response:
        from starlette.responses import Response

        record = RecordedRequest(request.method, request.url.path, dict(request.headers), b"")
        self.requests.append(record)
        fault = self._fault(request.url.path)
        data = self.output_png(request.path_params["uuid"])
        if fault is not None:
            record.outcome = f"fault {fault.kind}"
            return _cdn_fault(fault, data)
        if data is None or request.path_params["name"] != "0.png":
            record.outcome = "not found"
            return Response("Not Found", status_code=404, media_type="text/plain")
        record.outcome = "ok"
        return Response(data, media_type="image/png")

    def app(self) -> Starlette:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route, WebSocketRoute

        handlers: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "Detail": self.detail,
            "Kill": self.kill,
            "Cancel": self.cancel,
        }

        def dispatch(path: dict[str, Any], body: dict[str, Any], base: str) -> dict[str, Any]:
            if "owner" in path:
                return self.run(f"{path['owner']}/{path['model']}", body, base)
            handler = handlers.get(path["action"])
            if handler is None:
                raise _RefusedError("Endpoint not found.", code=1, status=404)
            return handler(body, base)

        async def api(request: Request) -> Response:
            raw = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            record = RecordedRequest(request.method, request.url.path, headers, raw)
            self.requests.append(record)
            base = str(request.base_url).rstrip("/")
            fault = self._fault(request.url.path)
            if fault is not None and fault.kind in _BEFORE_WORK:
                record.outcome = f"fault {fault.kind}"
                return _refuse_early(fault)
            try:
                self._authenticate(headers)
                answer = dispatch(request.path_params, _json_body(headers, raw), base)
            except _RefusedError as refused:
                record.outcome = "unauthorized" if refused.status == 401 else "refused"
                return JSONResponse(refused.body, status_code=refused.status)
            record.outcome = "ok"
            if fault is None:
                return JSONResponse(answer)
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
                return JSONResponse(answer)
            record.outcome = f"fault {fault.kind}"
            return _broken_answer(fault, answer)

        async def not_found(request: Request) -> Response:
            return JSONResponse(_error("Endpoint not found.", 1), status_code=404)

        return Starlette(
            routes=[
                WebSocketRoute("/v1/socket", self._serve_socket),
                Route("/v1/Run/{owner}/{model}", api, methods=["POST"]),
                Route("/v1/Task/{action}", api, methods=["POST"]),
                Route("/cdn/{uuid}/{name}", self._serve_cdn, methods=["GET"]),
                Route("/{path:path}", not_found, methods=["GET", "POST"]),
            ]
        )


# Faults that answer before the emulator does anything.
_BEFORE_WORK = frozenset({"503", "429", "status"})

# What a misbehaving task socket sends before the real frames.
_JUNK_FRAMES = (
    "this is not JSON",
    "[1, 2, 3]",
    '{"type": "task_banana", "message": null}',
    '{"type": "task_output", "message": {"percentage": "NaN"}}',
    '{"type": 7}',
)


def _refuse_early(fault: Fault) -> Response:
    from starlette.responses import JSONResponse, Response

    if fault.kind == "status":
        if isinstance(fault.body, bytes | str):
            return Response(fault.body, status_code=fault.status, media_type="text/plain")
        return JSONResponse(fault.body, status_code=fault.status)
    return Response(
        "Service Unavailable" if fault.kind == "503" else "Too Many Requests",
        status_code=int(fault.kind),
        headers={"retry-after": fault.retry_after} if fault.kind == "429" else None,
        media_type="text/plain",
    )


def _broken_answer(fault: Fault, answer: dict[str, Any]) -> Response:
    """The answer to a request that took effect, broken the way ``fault`` says."""
    from starlette.responses import JSONResponse, Response

    ids = {k: answer[k] for k in ("taskid", "socketaccesstoken") if k in answer}
    text = json.dumps(answer)
    if fault.kind == "trickle":
        return _trickle(text.encode(), fault.delay, "application/json")
    if fault.kind == "no-pexit" and answer.get("tasklist"):
        bare = [{k: v for k, v in task.items() if k != "pexit"} for task in answer["tasklist"]]
        return JSONResponse({**answer, "tasklist": bare})
    if fault.kind == "other-task" and answer.get("tasklist"):
        other = {**answer["tasklist"][0], "socketaccesstoken": "another-task-token"}
        other["id"] = str(int(other["id"]) + 1)
        return JSONResponse({**answer, "tasklist": [other]})
    broken: dict[str, Callable[[], Response]] = {
        "html": lambda: Response("<html><body>Welcome</body></html>", 200, media_type="text/html"),
        "truncated": lambda: Response(text[: len(text) // 2], 200, media_type="application/json"),
        "json-500": lambda: JSONResponse(_error("Internal error, please retry"), status_code=500),
        "false-bare": lambda: JSONResponse({"result": False, "errors": []}),
        "false-with-ids": lambda: JSONResponse({"result": False, "errors": [], **ids}),
        "wrong-types": lambda: JSONResponse(
            {"result": True, "errors": [], "taskid": {"id": 1}, "socketaccesstoken": 5, "tasklist": "none"}
        ),
    }
    gateway = lambda: Response("<html><body>502 Bad Gateway</body></html>", 502, media_type="text/html")  # noqa: E731
    return broken.get(fault.kind, gateway)()


def _cdn_fault(fault: Fault, data: bytes | None) -> Response:
    """An image download that misbehaves the way ``fault`` says."""
    from starlette.responses import Response

    if fault.kind == "redirect":
        return Response(status_code=302, headers={"location": str(fault.body)})
    if fault.kind == "huge-dims":
        return Response(declared_png(12_000, 12_000), media_type="image/png")
    if fault.kind == "fake-png":
        return Response(PNG_SIGNATURE + b"\x00" * 64, media_type="image/png")
    if data is not None and fault.kind == "trickle":
        return _trickle(data, fault.delay, "image/png")
    if data is not None and fault.kind == "drop":
        return _dropped(data)
    return Response("Service Unavailable", status_code=503, media_type="text/plain")


def _trickle(data: bytes, delay: float, media_type: str) -> Response:
    """``data`` one byte at a time, ``delay`` seconds apart, as a stalled network delivers it."""
    from starlette.responses import StreamingResponse

    async def drip() -> Any:
        for index in range(len(data)):
            yield data[index : index + 1]
            await asyncio.sleep(delay)

    return StreamingResponse(drip(), media_type=media_type, headers={"content-length": str(len(data))})


def _dropped(data: bytes) -> Response:
    """Half of ``data``, then the connection closes: a download the network breaks."""
    from starlette.responses import StreamingResponse

    async def half() -> Any:
        yield data[: len(data) // 2]
        raise ConnectionResetError("the emulator drops this download on purpose")

    return StreamingResponse(half(), media_type="image/png", headers={"content-length": str(len(data))})


def _json_body(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    if "application/json" not in headers.get("content-type", ""):
        raise _RefusedError("Request body must be JSON (Content-Type: application/json).")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise _RefusedError("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _RefusedError("Request body must be a JSON object.")
    return body


def _validate_inputs(body: dict[str, Any]) -> dict[str, Any]:
    """Wiro's own checks of the model's inputs, with its defaults for what is missing."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _RefusedError("Request parameter [prompt] required")
    size = body.get("size", "1024x1024")
    if size not in ASPECT_RATIOS:
        raise _RefusedError(f"Request parameter [size] must be one of {', '.join(ASPECT_RATIOS)}")
    watermark = body.get("watermark", "false")
    if watermark not in ("true", "false"):
        raise _RefusedError('Request parameter [watermark] must be one of "false", "true"')
    guidance = _number(body.get("guidanceScale", 1), "guidanceScale")
    if not 1 <= guidance <= 10:
        raise _RefusedError("guidanceScale must be between 1 and 10")
    seed = _number(body.get("seed", 1), "seed")
    if not float(seed).is_integer() or not 0 <= seed <= 2_147_483_647:
        raise _RefusedError("seed must be between 0 and 2147483647")
    return {
        "prompt": prompt,
        "size": size,
        "watermark": watermark,
        "guidanceScale": str(body.get("guidanceScale", 1)),
        "seed": str(int(seed)),
    }


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise _RefusedError(f"Request parameter [{name}] must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _RefusedError(f"Request parameter [{name}] must be a number") from None
    if not math.isfinite(number):
        raise _RefusedError(f"Request parameter [{name}] must be a number")
    return number


# -- running it ----------------------------------------------------------------------------


@dataclass
class EmulatorServer:
    """The emulator served by uvicorn on a thread of its own, on 127.0.0.1.

    ``with EmulatorServer(WiroEmulator()) as server: server.base_url`` gives a live base URL
    for ``WIRO_API_BASE_URL``; the port is picked by the OS unless one is given.
    """

    emulator: WiroEmulator = field(default_factory=WiroEmulator)
    host: str = "127.0.0.1"
    port: int = 0
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _server: Any = field(default=None, init=False, repr=False)
    _app: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.use(self.emulator)

    def use(self, emulator: WiroEmulator) -> WiroEmulator:
        """Serve ``emulator`` from now on, on the same port (a fresh project for each test)."""
        self.emulator = emulator
        self._app = emulator.app()
        return emulator

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def start(self) -> EmulatorServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            ws="wsproto",
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wiro-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Wiro emulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(emulator: WiroEmulator, host: str, port: int) -> None:
    """Serve in the foreground until interrupted (the ``emulator`` subcommand)."""
    import uvicorn

    uvicorn.run(emulator.app(), host=host, port=port, ws="wsproto", log_level="info", lifespan="off")
