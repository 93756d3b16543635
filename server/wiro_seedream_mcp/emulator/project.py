"""The emulated Wiro project: its tasks, how it authenticates, and what its endpoints answer."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .dialect import REFERENCE
from .inputs import validate_inputs
from .pictures import gradient_png
from .prices import charge, tool_record
from .reference import COST_PER_SECOND, ERROR_MARKER, FAIL_MARKER, MODEL_SLUG, Status, dimensions
from .tasks import (
    EmulatedTask,
    Fault,
    Project,
    RecordedRequest,
    RefusedError,
    Timings,
    hmac_sha256_hex,
    schedule,
)

log = logging.getLogger(__name__)


class WiroEmulator:
    """The state and behaviour of the emulated Wiro project (:func:`.app.build_app` serves it)."""

    def __init__(
        self,
        project: Project | None = None,
        timings: Timings | None = None,
        *,
        max_active: int | None = None,
        socket: bool = True,
        clock: Callable[[], float] = time.monotonic,
        others: Sequence[Project] = (),
        dialect: str = REFERENCE,
        fail_seeds: Collection[int] = (),
    ) -> None:
        """``fail_seeds``: the tasks run with these seeds fail (one image of a set failing)."""
        self.project = project or Project()
        self.fail_seeds = frozenset(fail_seeds)
        # More projects on the same emulator, each with its own key and its own tasks (callers
        # bringing their own keys to one server).
        self.projects = {p.api_key: p for p in (self.project, *others)}
        self.timings = timings or Timings()
        self.max_active = max_active
        self.socket = socket
        self.clock = clock
        self.tasks: dict[str, EmulatedTask] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.socket_sessions = 0
        # The shapes answers take: the reference page's, or the docs' and SDKs' (:mod:`.dialect`).
        self.dialect = dialect
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

    def fault(self, path: str) -> Fault | None:
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
        return sum(1 for t in self.tasks.values() if t.status(now) not in Status.TERMINAL)

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> str:
        """The key of the project the request is signed for; raises when it is not valid."""
        key = headers.get("x-api-key") or ""
        project = next(
            (p for k, p in self.projects.items() if secrets.compare_digest(key.encode(), k.encode())), None
        )
        if not key or project is None:
            raise RefusedError("Project authorization is not valid.", status=401)
        secret = project.api_secret
        if secret is None:
            return key
        nonce, signature = headers.get("x-nonce"), headers.get("x-signature")
        if not nonce or not signature:
            raise RefusedError(
                "Project requires signature authentication. x-signature and x-nonce headers are required.",
                status=401,
            )
        expected = hmac_sha256_hex(key.encode(), (secret + nonce).encode())
        if not secrets.compare_digest(expected.encode(), signature.encode()):
            raise RefusedError("Project authorization is not valid.", status=401)
        with self._lock:
            if nonce in self._seen_nonces:
                raise RefusedError("Project authorization is not valid. Nonce was already used.", status=401)
            self._seen_nonces.add(nonce)
        return key

    # -- endpoints -----------------------------------------------------------------------

    def run(self, model: str, body: dict[str, Any], base: str, key: str | None = None) -> dict[str, Any]:
        if model.lower() != MODEL_SLUG:
            raise RefusedError("Model not found.", code=1, status=404)
        inputs = validate_inputs(body)
        now = self.clock()
        if self.max_active is not None and self._active(now) >= self.max_active:
            raise RefusedError(
                "Concurrent task limit reached for your balance. Please wait for running tasks to finish.",
                code=96,
            )
        prompt = str(inputs["prompt"])
        failure = "error" if ERROR_MARKER in prompt else "fail" if FAIL_MARKER in prompt else None
        if failure is None and str(inputs.get("seed")) in {str(seed) for seed in self.fail_seeds}:
            failure = "fail"
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
                schedule=schedule(self.timings, failure),
                failure=failure,
                callbackurl=str(body.get("callbackUrl") or ""),
                key=key or self.project.api_key,
            )
            self.tasks[taskid] = task
        if failure is None:
            self._paint(task)
        log.info("emulator: task %s queued (%s)", taskid, inputs["size"])
        return {"errors": [], "taskid": taskid, "socketaccesstoken": task.token, "result": True}

    def _find(self, body: dict[str, Any], *fields: str, key: str | None = None) -> EmulatedTask:
        for name in fields:
            value = body.get(name)
            if value is None or str(value) == "":
                continue
            value = str(value)
            if name == "taskid":
                task = self.tasks.get(value)
            else:
                task = next((t for t in self.tasks.values() if t.token == value), None)
            if task is None or (key is not None and task.key != key):  # another project's task
                raise RefusedError("There is no task yet.", code=1)
            return task
        raise RefusedError(f"Request parameter [{fields[0]}] required")

    def detail(self, body: dict[str, Any], base: str, key: str | None = None) -> dict[str, Any]:
        task = self._find(body, "taskid", "tasktoken", key=key)
        return {"total": "1", "errors": [], "tasklist": [self.render(task, base)], "result": True}

    def tool_detail(self, body: dict[str, Any], base: str, key: str | None = None) -> dict[str, Any]:
        """The model's catalogue record, with its price list."""
        asked = f"{body.get('slugowner', '')}/{body.get('slugproject', '')}".lower()
        if asked != MODEL_SLUG:
            raise RefusedError("Tool not found.", code=1)
        return {"result": True, "errors": [], "tool": [tool_record(self.project.prices)]}

    def kill(self, body: dict[str, Any], base: str, key: str | None = None) -> dict[str, Any]:
        task = self._find(body, "taskid", "socketaccesstoken", "tasktoken", key=key)
        now = self.clock()
        status = task.status(now)
        if status in Status.TERMINAL or status == Status.QUEUE:
            raise RefusedError("Task is not in a killable state.", code=1)
        self._stop(task, "kill", now)
        return {"errors": [], "tasklist": [self.render(task, base)], "result": True}

    def cancel(self, body: dict[str, Any], base: str, key: str | None = None) -> dict[str, Any]:
        task = self._find(body, "taskid", "tasktoken", key=key)
        now = self.clock()
        if task.status(now) != Status.QUEUE:
            raise RefusedError("Task is not in a cancellable state.", code=1)
        self._stop(task, "cancel", now)
        return {"errors": [], "tasklist": [self.render(task, base)], "result": True}

    def _stop(self, task: EmulatedTask, how: str, now: float) -> None:
        task.stopped, task.stopped_at, task.stopped_wall = how, now, int(time.time())
        if task.changed is not None:
            task.changed.set()
        log.info("emulator: task %s stopped by %s", task.id, how)

    def output_png(self, task_uuid: str) -> bytes | None:
        task = next((t for t in self.tasks.values() if t.uuid == task_uuid), None)
        if task is None or task.status(self.clock()) != Status.POSTPROCESS_END or task.failure:
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

        start = task.at(Status.START)
        # A task's run time (and so its cost) stops growing once it has ended or was stopped.
        end = task.at(Status.END)
        end_at = task.stopped_at if task.stopped_at is not None else now if end is None else min(now, end)
        ran = max(0.0, end_at - start) if start is not None and end_at > start else 0.0
        finished = status == Status.POSTPROCESS_END
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
                    "addedtime": wall(Status.END),
                    "modifiedtime": wall(Status.END),
                    "accesskey": secrets.token_urlsafe(22)[:30],
                    "url": f"{base}/cdn/{task.uuid}/0.png",
                }
            )
            cost = f"{charge(self.project.prices, task.inputs, ran):.12f}"
        elif status == Status.ERROR:
            debugerror = "Emulated error: the task could not be started."
        elif status == Status.CANCEL and task.stopped == "kill":
            pexit = "0"
            cost = f"{ran * float(COST_PER_SECOND):.12f}"
        debugoutput = ""
        if status == Status.OUTPUT:
            debugoutput = f"{math.floor(task.progress(now) * 100)}%"
        return {
            "id": task.id,
            "uuid": task.uuid,
            "name": "",
            "socketaccesstoken": task.token,
            "parameters": dict(task.inputs),
            "debugoutput": debugoutput,
            "debugerror": debugerror,
            "starttime": wall(Status.START),
            "endtime": wall(Status.END),
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
            "assigntime": wall(Status.ASSIGN),
            "accepttime": wall(Status.ACCEPT),
            "preprocessstarttime": wall(Status.PREPROCESS_START),
            "preprocessendtime": wall(Status.PREPROCESS_END),
            "postprocessstarttime": wall(Status.POSTPROCESS_START),
            "postprocessendtime": wall(Status.POSTPROCESS_END),
            "pexit": pexit,
            "categories": json.dumps(["tool", "text-to-image"]),
            "outputs": outputs,
            "size": str(sum(int(o["size"]) for o in outputs)),
        }
