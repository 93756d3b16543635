"""An async client for the parts of the Wiro task API this model needs.

``run`` starts a paid task; ``detail``, ``kill`` and ``cancel`` look after it. Every body is
JSON, every request is signed by :class:`~.signing.WiroAuth`, and every failure becomes a
:class:`~.errors.WiroError`.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx2 as httpx
from pydantic import ValidationError

from .errors import (
    CODE_NOT_FOUND,
    WiroAPIError,
    WiroAuthError,
    WiroConnectionError,
    WiroError,
    WiroHTTPError,
    WiroNotFoundError,
    WiroRunUnknownError,
    run_may_have_started,
)
from .models import RunReceipt, RunResponse, Task, TaskListResponse, ToolRecord, ToolResponse
from .seedream import MODEL_SLUG, RUN_PATH, SeedreamInputs
from .signing import WiroAuth

# The catalogue's record of a model, with its price.
TOOL_PATH = "/Tool/Detail"

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 429})
# The longest one request may take, answer body included: a server that trickles its answer a
# byte at a time is cut off here, not after minutes of per-read time-outs.
REQUEST_DEADLINE = 20.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of the calls that are safe to repeat, with exponential backoff and full jitter.

    ``Run`` is paid, so it is repeated only when the request certainly never left this machine
    (a connection that could not be opened); every other failure of ``Run`` is final.
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: float = 20.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))


def retryable(exc: WiroError, *, idempotent: bool) -> bool:
    if isinstance(exc, WiroConnectionError):
        return idempotent or not exc.sent
    if not idempotent or exc.status is None:
        return False
    return exc.status in _RETRY_STATUSES or exc.status >= 500


_AUTH_WORDS = ("authorization", "signature", "api key", "apikey", "x-api-key", "unauthorized")


def exactly_one(**fields: str | None) -> dict[str, str]:
    """The one non-blank field among ``fields``, as a request body; ValueError otherwise."""
    given = {name: value.strip() for name, value in fields.items() if value is not None and value.strip()}
    if len(given) != 1:
        names = " or ".join(fields)
        if len(fields) == 1:
            raise ValueError(f"{names} is required and must not be blank")
        raise ValueError(f"give exactly one of {names}, not {'both' if given else 'neither'}")
    return given


class WiroClient:
    """Wiro's Run and Task endpoints over one shared :class:`httpx2.AsyncClient`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        auth: WiroAuth,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        request_deadline: float = REQUEST_DEADLINE,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._request_deadline = request_deadline

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    @property
    def base_url(self) -> str:
        return self._base_url

    async def run(self, inputs: SeedreamInputs) -> RunReceipt:
        """Start one Seedream task. Paid: never retried once the request may have been sent.

        A failure after the request may have reached Wiro is a :class:`WiroRunUnknownError`
        (a task may exist); any other failure is a refusal that started nothing.
        """
        try:
            data = await self._post(RUN_PATH, inputs.to_wire(), idempotent=False)
            try:
                answer = RunResponse.model_validate(data)
            except ValidationError as exc:
                raise _shape_error(RUN_PATH, exc) from exc
            if not answer.taskid:
                raise WiroHTTPError("Wiro accepted the Run request but sent no task id", status=200)
        except WiroError as exc:
            if not run_may_have_started(exc):
                raise
            unknown = WiroRunUnknownError(str(exc), taskid=exc.taskid, token=exc.token)
            raise unknown from exc
        log.info("task %s accepted by Wiro", answer.taskid)
        return RunReceipt(taskid=answer.taskid, socketaccesstoken=answer.socketaccesstoken)

    async def detail(self, *, taskid: str | None = None, tasktoken: str | None = None) -> Task:
        """The task's current record, by id or by its token."""
        body = exactly_one(taskid=taskid, tasktoken=tasktoken)
        return await self._task_call("/Task/Detail", body)

    async def kill(self, *, taskid: str | None = None, socketaccesstoken: str | None = None) -> Task:
        """Stop a running task; it ends ``task_cancel``."""
        body = exactly_one(taskid=taskid, socketaccesstoken=socketaccesstoken)
        return await self._task_call("/Task/Kill", body)

    async def cancel(self, *, taskid: str) -> Task:
        """Take a task out of the queue. Wiro refuses once the task has started: use kill then."""
        body = exactly_one(taskid=taskid)
        return await self._task_call("/Task/Cancel", body)

    async def tool_detail(self) -> ToolRecord:
        """This model's record in Wiro's catalogue, with its price. Free, and retried like Detail."""
        owner, project = MODEL_SLUG.split("/")
        data = await self._post(TOOL_PATH, {"slugowner": owner, "slugproject": project}, idempotent=True)
        try:
            answer = ToolResponse.model_validate(data)
        except ValidationError as exc:
            raise _shape_error(TOOL_PATH, exc) from exc
        if not answer.tool:
            raise WiroNotFoundError(f"Wiro's catalogue has no {MODEL_SLUG}", status=200)
        return answer.tool[0]

    async def _task_call(self, path: str, body: dict[str, str]) -> Task:
        ident = next(iter(body.values()))
        try:
            data = await self._post(path, body, idempotent=True)
        except WiroError as exc:
            if exc.taskid is None and "taskid" in body:
                exc.taskid = body["taskid"]
            raise
        try:
            answer = TaskListResponse.model_validate(data)
        except ValidationError as exc:
            raise _shape_error(path, exc) from exc
        if not answer.tasklist:
            raise WiroNotFoundError(
                f"Wiro has no task {ident!r} in this project", code=CODE_NOT_FOUND, taskid=body.get("taskid")
            )
        task = answer.tasklist[0]
        asked_id = body.get("taskid")
        asked_token = body.get("tasktoken") or body.get("socketaccesstoken")
        if (asked_id is not None and task.id != asked_id) or (
            asked_token is not None and task.socketaccesstoken and task.socketaccesstoken != asked_token
        ):
            # Never show another task's status or images as this one's.
            raise WiroHTTPError(
                f"Wiro answered {path} with task {task.id[:40]!r}, not the task asked for",
                status=200,
                taskid=asked_id,
            )
        return task

    async def _post(self, path: str, body: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        retry = 0
        while True:
            try:
                return await self._post_once(path, body)
            except WiroError as exc:
                if retry + 1 >= self._retry.attempts or not retryable(exc, idempotent=idempotent):
                    raise
                delay = self._retry.delay(retry, exc.retry_after)
                retry += 1
                log.warning(
                    "%s failed (%s); retry %d of %d in %.2f s",
                    path,
                    exc,
                    retry,
                    self._retry.attempts - 1,
                    delay,
                )
                await self._sleep(delay)

    async def _post_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self._base_url + path
        try:
            with anyio.fail_after(self._request_deadline):
                response = await self._http.post(url, json=body, auth=self._auth)
        except TimeoutError as exc:
            raise WiroConnectionError(
                f"Wiro did not answer {path} within {self._request_deadline:g} s", sent=True
            ) from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left this machine: nothing reached Wiro.
            raise WiroConnectionError(
                f"could not connect to Wiro at {self._base_url}: {exc}", sent=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise WiroConnectionError(
                f"Wiro did not answer {path} in time ({type(exc).__name__})", sent=True
            ) from exc
        except httpx.TransportError as exc:
            raise WiroConnectionError(
                f"the connection to Wiro failed during {path}: {exc}", sent=True
            ) from exc
        return _decode(path, response)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("date")
    now = parsedate_to_datetime(date) if date else datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _decode(path: str, response: httpx.Response) -> dict[str, Any]:
    try:
        return _decode_body(path, response)
    except WiroError as exc:
        exc.retry_after = _retry_after(response)
        raise


def _decode_body(path: str, response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise WiroHTTPError(
            f"Wiro answered {path} with HTTP {status} and a body that is not JSON", status=status
        )

    errors = data.get("errors")
    if data.get("result") is True and status < 400:
        return data

    try:
        raise _refusal(path, status, errors if isinstance(errors, list) else [])
    except WiroError as exc:
        # A broken Run answer may still say which task it made: keep that, to look it up.
        taskid, token = data.get("taskid"), data.get("socketaccesstoken")
        if isinstance(taskid, str | int) and not isinstance(taskid, bool) and str(taskid).strip():
            exc.taskid = exc.taskid or str(taskid).strip()[:64]
        if isinstance(token, str) and token.strip():
            exc.token = token.strip()[:128]
        raise


# Wiro's messages are short; anything longer is cut so that no answer can flood a result.
MAX_MESSAGE = 500


def _refusal(path: str, status: int, errors: list[Any]) -> WiroError:
    """The error for an answer that is not a success, by what it says and its HTTP status."""
    messages = [str(e.get("message", "")).strip()[:MAX_MESSAGE] for e in errors if isinstance(e, dict)]
    codes = [e.get("code") for e in errors if isinstance(e, dict)]
    given = "; ".join(m for m in messages if m)
    code = _first_int(codes)
    lowered = given.lower()
    if status in (401, 403) or any(word in lowered for word in _AUTH_WORDS):
        return WiroAuthError(
            given or f"Wiro refused the credentials (HTTP {status})", code=code, status=status
        )
    if status == 404 or code == CODE_NOT_FOUND:
        return WiroNotFoundError(given or f"Wiro refused {path} without saying why", code=code, status=status)
    if not given:
        return WiroHTTPError(f"Wiro answered {path} with HTTP {status} but gave no reason", status=status)
    return WiroAPIError(given, code=code, status=status)


def _shape_error(path: str, exc: ValidationError) -> WiroHTTPError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the body"
    return WiroHTTPError(
        f"Wiro's answer to {path} does not have the documented shape ({where}: {first['msg']})", status=200
    )


def _first_int(values: list[Any]) -> int | None:
    for value in values:
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None
