"""The emulator over HTTP: the API's endpoints, the CDN that serves the pictures, and the faults
that make chosen requests misbehave the way a network or a gateway does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .dialect import DOCS, answer_in_docs
from .inputs import json_body
from .pictures import PNG_SIGNATURE, declared_png
from .project import WiroEmulator
from .task_socket import serve_socket
from .tasks import Fault, RecordedRequest, RefusedError, error

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response


def build_app(emulator: WiroEmulator) -> Starlette:
    """The emulator as an ASGI app: the API, the task socket and the CDN."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute

    handlers: dict[str, Callable[..., dict[str, Any]]] = {
        "Detail": emulator.detail,
        "Kill": emulator.kill,
        "Cancel": emulator.cancel,
    }

    def dispatch(path: dict[str, Any], body: dict[str, Any], base: str, key: str) -> dict[str, Any]:
        if "owner" in path:
            return emulator.run(f"{path['owner']}/{path['model']}", body, base, key)
        handler = (
            emulator.tool_detail if path.get("tool") == "Detail" else handlers.get(path.get("action", ""))
        )
        if handler is None:
            raise RefusedError("Endpoint not found.", code=1, status=404)
        return handler(body, base, key)

    async def api(request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = RecordedRequest(request.method, request.url.path, headers, raw)
        emulator.requests.append(record)
        base = str(request.base_url).rstrip("/")
        fault = emulator.fault(request.url.path)
        if fault is not None and fault.kind in _BEFORE_WORK:
            record.outcome = f"fault {fault.kind}"
            return _refuse_early(fault)
        try:
            key = emulator.authenticate(headers)
            answer = dispatch(request.path_params, json_body(headers, raw), base, key)
        except RefusedError as refused:
            record.outcome = "unauthorized" if refused.status == 401 else "refused"
            body = answer_in_docs(refused.body) if emulator.dialect == DOCS else refused.body
            return JSONResponse(body, status_code=refused.status)
        if emulator.dialect == DOCS and "action" in request.path_params:
            answer = answer_in_docs(answer)
        record.outcome = "ok"
        if fault is None:
            return JSONResponse(answer)
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return JSONResponse(answer)
        record.outcome = f"fault {fault.kind}"
        return _broken_answer(fault, answer)

    async def not_found(request: Request) -> Response:
        return JSONResponse(error("Endpoint not found.", 1), status_code=404)

    return Starlette(
        routes=[
            WebSocketRoute("/v1/socket", partial(serve_socket, emulator)),
            Route("/v1/Run/{owner}/{model}", api, methods=["POST"]),
            Route("/v1/Task/{action}", api, methods=["POST"]),
            Route("/v1/Tool/{tool}", api, methods=["POST"]),
            Route("/cdn/{uuid}/{name}", partial(_serve_cdn, emulator), methods=["GET"]),
            Route("/{path:path}", not_found, methods=["GET", "POST"]),
        ]
    )


async def _serve_cdn(emulator: WiroEmulator, request: Request) -> Response:
    from starlette.responses import Response

    record = RecordedRequest(request.method, request.url.path, dict(request.headers), b"")
    emulator.requests.append(record)
    fault = emulator.fault(request.url.path)
    data = emulator.output_png(request.path_params["uuid"])
    if fault is not None:
        record.outcome = f"fault {fault.kind}"
        return _cdn_fault(fault, data)
    if data is None or request.path_params["name"] != "0.png":
        record.outcome = "not found"
        return Response("Not Found", status_code=404, media_type="text/plain")
    record.outcome = "ok"
    return Response(data, media_type="image/png")


# Faults that answer before the emulator does anything.
_BEFORE_WORK = frozenset({"503", "429", "status"})


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
        "json-500": lambda: JSONResponse(error("Internal error, please retry"), status_code=500),
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
    streamed: dict[str, Callable[[bytes, float], Response]] = {
        "trickle": _trickle_png,
        "slow": _late,
        "drop": _dropped,
    }
    if data is not None and fault.kind in streamed:
        return streamed[fault.kind](data, fault.delay)
    return Response("Service Unavailable", status_code=503, media_type="text/plain")


def _trickle_png(data: bytes, delay: float) -> Response:
    return _trickle(data, delay, "image/png")


def _trickle(data: bytes, delay: float, media_type: str) -> Response:
    """``data`` one byte at a time, ``delay`` seconds apart, as a stalled network delivers it."""
    from starlette.responses import StreamingResponse

    async def drip() -> Any:
        for index in range(len(data)):
            yield data[index : index + 1]
            await asyncio.sleep(delay)

    return StreamingResponse(drip(), media_type=media_type, headers={"content-length": str(len(data))})


def _late(data: bytes, delay: float) -> Response:
    """The whole image, but only after ``delay`` seconds: a slow CDN."""
    from starlette.responses import StreamingResponse

    async def later() -> Any:
        await asyncio.sleep(delay)
        yield data

    return StreamingResponse(later(), media_type="image/png", headers={"content-length": str(len(data))})


def _dropped(data: bytes, _delay: float = 0.0) -> Response:
    """Half of ``data``, then the connection closes: a download the network breaks."""
    from starlette.responses import StreamingResponse

    async def half() -> Any:
        yield data[: len(data) // 2]
        raise ConnectionResetError("the emulator drops this download on purpose")

    return StreamingResponse(half(), media_type="image/png", headers={"content-length": str(len(data))})
