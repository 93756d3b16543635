"""The emulator is the stand-in for Wiro in every other test, so it is tested on its own terms:
with requests built here by hand, not by the client it is meant to check."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from wiro_seedream_mcp.emulator import (
    ERROR_MARKER,
    FAIL_MARKER,
    EmulatorServer,
    Project,
    Timings,
    WiroEmulator,
)
from wiro_seedream_mcp.emulator.pictures import gradient_png, png_size
from wiro_seedream_mcp.emulator.tasks import hmac_sha256_hex
from wiro_seedream_mcp.wiro.seedream import ASPECT_RATIOS

from .conftest import API_KEY, API_SECRET

RUN = "/Run/bytedance/text-to-image-seedream-v3"
SLOW = Timings(queue=60, prepare=1, generate=60, postprocess=1)
RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)

_counter = iter(range(10**9))


def signed_headers(key: str = API_KEY, secret: str = API_SECRET, nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or f"{int(time.time() * 1000)}{next(_counter):06d}"
    sig = hmac.new(key.encode(), f"{secret}{nonce}".encode(), hashlib.sha256).hexdigest()
    return {"x-api-key": key, "x-nonce": nonce, "x-signature": sig}


def post(
    server: EmulatorServer, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        server.base_url + path, json=body, headers=signed_headers() if headers is None else headers
    )


def run_task(server: EmulatorServer, **inputs: Any) -> dict[str, Any]:
    response = post(server, RUN, {"prompt": "a red fox", **inputs})
    data: dict[str, Any] = response.json()
    assert data["result"] is True, data
    return data


def detail(server: EmulatorServer, taskid: str) -> dict[str, Any]:
    task: dict[str, Any] = post(server, "/Task/Detail", {"taskid": taskid}).json()["tasklist"][0]
    return task


def wait_done(server: EmulatorServer, taskid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        task = detail(server, taskid)
        if task["status"] in ("task_postprocess_end", "task_cancel", "task_error"):
            return task
        time.sleep(0.01)
    raise AssertionError("task did not end")


def test_own_hmac_matches_the_standard_one() -> None:
    for key in (b"", b"k", b"x" * 64, b"y" * 200):
        message = b"secret1734513807"
        assert hmac_sha256_hex(key, message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_run_answers_like_the_reference(emulator: EmulatorServer) -> None:
    data = run_task(emulator)
    assert set(data) == {"errors", "taskid", "socketaccesstoken", "result"}
    assert data["errors"] == []
    assert data["taskid"].isdigit()
    assert len(data["socketaccesstoken"]) == 30


def test_full_lifecycle_in_documented_order(emulator: EmulatorServer) -> None:
    taskid = run_task(emulator, size="1280x720")["taskid"]
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not seen or seen[-1] != "task_postprocess_end"):
        status = detail(emulator, taskid)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
    order = [
        "task_queue",
        "task_accept",
        "task_preprocess_start",
        "task_preprocess_end",
        "task_assign",
        "task_start",
        "task_output",
        "task_output_full",
        "task_end",
        "task_postprocess_start",
        "task_postprocess_end",
    ]
    assert seen == sorted(seen, key=order.index), "statuses went backwards"
    assert seen[-1] == "task_postprocess_end"
    task = detail(emulator, taskid)
    assert task["pexit"] == "0"
    assert float(task["totalcost"]) > 0
    [output] = task["outputs"]
    assert output["contenttype"] == "image/png"
    image = httpx.get(output["url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert png_size(image.content) == (1280, 720)
    assert int(output["size"]) == len(image.content)


def test_detail_by_token(emulator: EmulatorServer) -> None:
    run = run_task(emulator)
    by_token = post(emulator, "/Task/Detail", {"tasktoken": run["socketaccesstoken"]}).json()
    assert by_token["tasklist"][0]["id"] == run["taskid"]


def test_unknown_task_is_code_1(emulator: EmulatorServer) -> None:
    answer = post(emulator, "/Task/Detail", {"taskid": "424242"}).json()
    assert answer == {"result": False, "errors": [{"code": 1, "message": "There is no task yet."}]}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Project authorization is not valid."),
        ({"x-api-key": "wrong"}, "Project authorization is not valid."),
        ({"x-api-key": API_KEY}, "Project requires signature authentication."),
        (signed_headers(secret="wrong-secret"), "Project authorization is not valid."),
        ({**signed_headers(), "x-signature": "0" * 64}, "Project authorization is not valid."),
    ],
)
def test_bad_credentials_are_refused(emulator: EmulatorServer, headers: dict[str, str], message: str) -> None:
    response = post(emulator, RUN, {"prompt": "x"}, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["result"] is False
    assert body["errors"][0]["message"].startswith(message)
    assert emulator.emulator.tasks == {}


def test_a_nonce_is_accepted_once(emulator: EmulatorServer) -> None:
    headers = signed_headers(nonce="1734513807000")
    assert post(emulator, "/Task/Detail", {"taskid": "1"}, headers=headers).status_code == 200
    again = post(emulator, "/Task/Detail", {"taskid": "1"}, headers=headers)
    assert again.status_code == 401


def test_key_only_project(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(project=Project(api_key="only-key", api_secret=None))
    ok = post(server, RUN, {"prompt": "x"}, headers={"x-api-key": "only-key"})
    assert ok.json()["result"] is True
    assert post(server, RUN, {"prompt": "x"}, headers={"x-api-key": "other"}).status_code == 401


def test_json_body_required(emulator: EmulatorServer) -> None:
    response = httpx.post(emulator.base_url + RUN, data={"prompt": "x"}, headers=signed_headers())
    assert response.json()["result"] is False
    assert "JSON" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Request parameter [prompt] required"),
        ({"prompt": "   "}, "Request parameter [prompt] required"),
        ({"prompt": "x", "size": "1000x1000"}, "Request parameter [size] must be one of"),
        ({"prompt": "x", "watermark": True}, "Request parameter [watermark]"),
        ({"prompt": "x", "guidanceScale": 0}, "guidanceScale must be between 1 and 10"),
        ({"prompt": "x", "guidanceScale": 10.5}, "guidanceScale must be between 1 and 10"),
        ({"prompt": "x", "guidanceScale": "lots"}, "Request parameter [guidanceScale] must be a number"),
        ({"prompt": "x", "seed": -1}, "seed must be between 0 and 2147483647"),
        ({"prompt": "x", "seed": 2147483648}, "seed must be between 0 and 2147483647"),
        ({"prompt": "x", "seed": 1.5}, "seed must be between 0 and 2147483647"),
    ],
)
def test_inputs_validated_like_wiro(emulator: EmulatorServer, body: dict[str, Any], message: str) -> None:
    answer = post(emulator, RUN, body).json()
    assert answer["result"] is False
    assert answer["errors"][0]["message"].startswith(message)
    assert emulator.emulator.tasks == {}


def test_unknown_model_and_endpoint(emulator: EmulatorServer) -> None:
    assert post(emulator, "/Run/bytedance/other-model", {"prompt": "x"}).status_code == 404
    assert post(emulator, "/Task/Explode", {"taskid": "1"}).status_code == 404
    assert httpx.get(emulator.origin + "/nothing").status_code == 404


def test_owner_slug_is_case_insensitive(emulator: EmulatorServer) -> None:
    assert (
        post(emulator, "/Run/ByteDance/text-to-image-seedream-v3", {"prompt": "x"}).json()["result"] is True
    )


def test_cancel_only_while_queued(emulator_factory: Callable[..., EmulatorServer]) -> None:
    queued = emulator_factory(timings=SLOW)
    taskid = run_task(queued)["taskid"]
    assert post(queued, "/Task/Kill", {"taskid": taskid}).json()["errors"][0]["code"] == 1
    answer = post(queued, "/Task/Cancel", {"taskid": taskid}).json()
    assert answer["result"] is True
    assert answer["tasklist"][0]["status"] == "task_cancel"
    assert detail(queued, taskid)["status"] == "task_cancel"
    again = post(queued, "/Task/Cancel", {"taskid": taskid}).json()
    assert again["errors"] == [{"code": 1, "message": "Task is not in a cancellable state."}]


def test_kill_while_running(emulator_factory: Callable[..., EmulatorServer]) -> None:
    running = emulator_factory(timings=RUNNING)
    run = run_task(running)
    assert detail(running, run["taskid"])["status"] in ("task_start", "task_output")
    refused = post(running, "/Task/Cancel", {"taskid": run["taskid"]}).json()
    assert refused["errors"][0]["message"] == "Task is not in a cancellable state."
    killed = post(running, "/Task/Kill", {"socketaccesstoken": run["socketaccesstoken"]}).json()
    assert killed["tasklist"][0]["status"] == "task_cancel"
    task = detail(running, run["taskid"])
    assert task["status"] == "task_cancel"
    assert task["outputs"] == []
    assert running.emulator.tasks[run["taskid"]].stopped == "kill"


def test_fail_marker_ends_with_nonzero_exit(emulator: EmulatorServer) -> None:
    task = wait_done(emulator, run_task(emulator, prompt=f"a fox {FAIL_MARKER}")["taskid"])
    assert task["status"] == "task_postprocess_end"
    assert task["pexit"] == "1"
    assert task["debugerror"]
    assert task["outputs"] == []
    assert task["totalcost"] == "0"


def test_error_marker_ends_task_error(emulator: EmulatorServer) -> None:
    task = wait_done(emulator, run_task(emulator, prompt=f"a fox {ERROR_MARKER}")["taskid"])
    assert task["status"] == "task_error"
    assert task["pexit"] == ""
    assert task["debugerror"]


def test_concurrency_limit_is_code_96(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=SLOW, max_active=1)
    run_task(server)
    answer = post(server, RUN, {"prompt": "x"}).json()
    assert answer["result"] is False
    assert answer["errors"][0]["code"] == 96


def test_output_not_served_before_the_task_ends(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=SLOW)
    taskid = run_task(server)["taskid"]
    task_uuid = server.emulator.tasks[taskid].uuid
    assert httpx.get(f"{server.origin}/cdn/{task_uuid}/0.png").status_code == 404


def test_requests_are_recorded(emulator: EmulatorServer) -> None:
    post(emulator, RUN, {"prompt": "recorded"})
    [record] = emulator.emulator.requests
    assert record.path.endswith(RUN)
    assert record.outcome == "ok"
    assert json.loads(record.body) == {"prompt": "recorded"}
    assert emulator.emulator.count(RUN) == 1


@pytest.mark.parametrize("size", list(ASPECT_RATIOS))
def test_png_is_valid_for_every_size(size: str) -> None:
    width, height = (int(n) for n in size.split("x"))
    data = gradient_png(width, height, size)
    assert png_size(data) == (width, height)
    # Walk the chunks: every CRC is right and the pixel data has the right length.
    pos, idat = 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)


def test_a_finished_task_costs_the_same_on_every_look() -> None:
    """Its run time (and so its cost) stops at task_end, however long after it is looked at."""
    now = [1000.0]
    per_second = Project(prices=({"price": 0.003, "priceMethod": "cps"},))
    emulator = WiroEmulator(
        per_second, Timings(queue=1, prepare=1, generate=2, postprocess=1), clock=lambda: now[0]
    )
    taskid = emulator.run("bytedance/text-to-image-seedream-v3", {"prompt": "a fox"}, "http://127.0.0.1")[
        "taskid"
    ]
    task = emulator.tasks[taskid]
    now[0] += 3.0  # running: one second into generating
    running = emulator.render(task, "http://127.0.0.1")
    assert running["status"] == "task_output"
    assert float(running["elapsedseconds"]) == pytest.approx(1.0)
    looks = []
    for later in (6.0, 60.0, 3600.0):
        now[0] = 1000.0 + later
        looks.append(emulator.render(task, "http://127.0.0.1"))
    assert {look["status"] for look in looks} == {"task_postprocess_end"}
    assert {look["elapsedseconds"] for look in looks} == {"2.0000"}
    assert {look["totalcost"] for look in looks} == {f"{2 * 0.003:.12f}"}


def test_the_emulator_and_the_client_agree_on_the_reference() -> None:
    """Each keeps its own copy of the reference's facts; the two copies must say the same."""
    from wiro_seedream_mcp.emulator import reference
    from wiro_seedream_mcp.wiro.models import TaskStatus
    from wiro_seedream_mcp.wiro.seedream import MODEL_SLUG

    assert reference.SIZES == ASPECT_RATIOS
    assert reference.MODEL_SLUG == MODEL_SLUG
    assert reference.Status.TERMINAL == TaskStatus.TERMINAL
    names = [n for n in vars(TaskStatus) if n.isupper() and isinstance(getattr(TaskStatus, n), str)]
    assert {n: getattr(reference.Status, n) for n in names} == {n: getattr(TaskStatus, n) for n in names}


@pytest.mark.parametrize(
    ("prices", "size", "expected"),
    [
        (({"price": 0.03, "priceMethod": "cpr"},), "1024x1024", 0.03),
        (({"price": 0.002, "priceMethod": "cps"},), "1024x1024", 0.004),
        (({"price": 1e-8, "priceMethod": "cp-pixel"},), "1280x720", 1280 * 720 * 1e-8),
        (
            (
                {"price": 0.03, "priceMethod": "cpr"},
                {"price": 0.05, "priceMethod": "cpr", "inputs": {"size": "1512x648"}},
            ),
            "1512x648",
            0.05,
        ),
    ],
)
def test_a_finished_task_is_charged_by_the_price_list(
    prices: tuple[dict[str, Any], ...], size: str, expected: float
) -> None:
    now = [1000.0]
    emulator = WiroEmulator(
        Project(prices=prices), Timings(queue=1, prepare=1, generate=2, postprocess=1), clock=lambda: now[0]
    )
    taskid = emulator.run(
        "bytedance/text-to-image-seedream-v3", {"prompt": "a fox", "size": size}, "http://x"
    )["taskid"]
    now[0] += 10
    record = emulator.render(emulator.tasks[taskid], "http://x")
    assert float(record["totalcost"]) == pytest.approx(expected)
    catalogue = emulator.tool_detail(
        {"slugowner": "bytedance", "slugproject": "text-to-image-seedream-v3"}, "http://x"
    )
    assert json.loads(catalogue["tool"][0]["dynamicprice"]) == list(prices)
