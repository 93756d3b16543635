"""Every answer Wiro's public material shows, fed through this client, means what it must.

The files are in ``tests/fixtures/wiro/`` (its README names each one's source), exactly as the
sources show them; nothing here was captured from the live API. Answers reach the client through
an in-memory transport: no connection is made.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from wiro_seedream_mcp.follow import TaskFollower
from wiro_seedream_mcp.pricing import from_price_list
from wiro_seedream_mcp.wiro.client import WiroClient
from wiro_seedream_mcp.wiro.errors import WiroAPIError, WiroAuthError
from wiro_seedream_mcp.wiro.models import PriceRule, TaskStatus, ToolRecord
from wiro_seedream_mcp.wiro.seedream import SeedreamInputs
from wiro_seedream_mcp.wiro.signing import WiroAuth, signature

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "wiro"
BASE = "http://127.0.0.1:9/v1"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@asynccontextmanager
async def answering(body: Any, status: int = 200) -> AsyncIterator[WiroClient]:
    """A client whose every request is answered with ``body``, in memory."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield WiroClient(http, base_url=BASE, auth=WiroAuth(SecretStr("key"), SecretStr("secret")))


def test_every_fixture_has_a_test_and_a_source() -> None:
    readme = (FIXTURES / "README.md").read_text()
    files = sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md")
    tested = (Path(__file__)).read_text()
    for name in files:
        assert f"`{name}`" in readme, f"{name} has no source in the README"
        assert f'"{name}"' in tested, f"{name} has no test"


async def test_a_run_answer_gives_the_task_and_its_token() -> None:
    async with answering(fixture("run-success.json")) as client:
        receipt = await client.run(SeedreamInputs(prompt="a lake"))
    assert (receipt.taskid, receipt.socketaccesstoken) == ("2221", "eDcCm5yyUfIvMFspTwww49OUfgXkQt")


@pytest.mark.parametrize("name", ["run-request-model-page.json", "run-request-n8n.json"])
def test_what_this_client_sends_to_run_has_the_fields_wiro_is_sent(name: str) -> None:
    shown = fixture(name)
    sent = SeedreamInputs(prompt="a lake", seed=7).to_wire()
    assert set(sent) <= set(shown), set(sent) - set(shown)
    assert sent["size"] == shown["size"] and sent["watermark"] == shown["watermark"] == "false"


@pytest.mark.parametrize(
    ("name", "done", "succeeded", "reason"),
    [
        ("detail-success.json", True, True, None),
        # A realtime model's record: no exit code, no outputs; over, with no image and no failure.
        ("detail-no-pexit-no-outputs.json", True, False, ""),
        ("detail-failed-pexit-1.json", True, False, "exit code 1"),
        ("detail-task-error-final.json", True, False, "Output folder creation failed"),
    ],
)
async def test_a_detail_answer_means_what_it_says(
    name: str, done: bool, succeeded: bool, reason: str | None
) -> None:
    answer = fixture(name)
    async with answering(answer) as client:
        task = await client.detail(taskid=answer["tasklist"][0]["id"])
    assert (task.done, task.succeeded) == (done, succeeded)
    if reason is None:
        assert task.outputs[0].url.endswith("/0.png")
        assert task.totalcost is not None and float(task.totalcost) == pytest.approx(0.00351)
    elif not reason:
        assert task.outputs == [] and not task.failed
    else:
        assert task.failed
        assert reason.lower() in task.failure_reason().lower()


async def test_a_kill_answer_is_a_stopped_task_charged_for_its_time() -> None:
    async with answering(fixture("kill-answer.json")) as client:
        task = await client.kill(taskid="534574")
    assert task.status == TaskStatus.CANCEL
    assert task.done and not task.succeeded
    assert task.totalcost is not None and float(task.totalcost) == pytest.approx(0.00351)


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("error-balance.json", WiroAPIError, "Insufficient balance"),
        ("error-concurrency.json", WiroAPIError, "concurrent task limit"),
        ("error-auth-observed.json", WiroAuthError, "Project authorization is not founded"),
    ],
)
async def test_an_error_answer_is_a_refusal_with_wiros_words(
    name: str, kind: type[Exception], words: str
) -> None:
    async with answering(fixture(name)) as client:
        with pytest.raises(kind, match=words):
            await client.detail(taskid="1")


@pytest.mark.parametrize(
    ("name", "usd", "per"),
    [
        ("tool-detail-price.json", 0.09, "per request"),
        # No priceMethod: still a price per request, not a per-second guess.
        ("tool-list-price-no-method.json", 0.09, "per request"),
    ],
)
def test_a_price_list_gives_the_price_of_one_image(name: str, usd: float, per: str) -> None:
    tool = ToolRecord.model_validate(fixture(name)["tool"][0])
    estimate = from_price_list(tool, SeedreamInputs(prompt="x"))
    assert estimate is not None
    assert estimate.usd == pytest.approx(usd)
    assert per in estimate.basis


def test_price_tiers_apply_to_the_inputs_they_name() -> None:
    rules = [PriceRule.model_validate(rule) for rule in fixture("price-tiers.json")]
    assert (rules[0].inputs, float(rules[0].price), rules[0].priceMethod) == (
        {"resolution": "720p", "duration": "5"},
        0.13,
        "cpr",
    )
    # Neither tier names Seedream's inputs, so neither prices a Seedream task.
    tool = ToolRecord(dynamicprice=rules)
    assert from_price_list(tool, SeedreamInputs(prompt="x")) is None


def frames() -> list[tuple[str, dict[str, Any]]]:
    lines = (FIXTURES / "socket-frames.jsonl").read_text().splitlines()
    return [
        (item["source"], item["frame"])
        for item in map(json.loads, lines)
        if item["frame"]["type"] != "task_info"
    ]


async def test_socket_frames_move_the_task_forward_and_only_the_last_one_ends_it() -> None:
    async with answering({}) as client:
        seen: list[tuple[float, str]] = []

        async def progress(value: float, message: str) -> None:
            seen.append((value, message))

        follower = TaskFollower(client, "534574", on_progress=progress, status=TaskStatus.QUEUE)
        ended: list[str] = []
        for source, frame in frames():
            going = await follower._on_frame(frame)
            if not going:
                ended.append(source)
    # Only the final event ends the follow (task_end, an interim task_error are not final).
    assert len(ended) == 1 and "final event" in ended[0]
    # Progress as an object and as a JSON string both read 60 %.
    assert [message for _, message in seen].count("generating 60%") == 1
    assert seen == sorted(seen)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "progressGenerate", "percentage": "40"},
        '{"type":"progressGenerate","task":"Generate","percentage":"40","stepCurrent":"4","stepTotal":"10"}',
        "40%",
    ],
)
async def test_progress_is_read_however_it_is_sent(message: Any) -> None:
    async with answering({}) as client:
        seen: list[str] = []

        async def progress(value: float, text: str) -> None:
            seen.append(text)

        follower = TaskFollower(client, "1", on_progress=progress, status=TaskStatus.START)
        await follower._on_frame({"type": "task_output", "id": "1", "message": message, "result": True})
    assert seen == ["generating 40%"]


@pytest.mark.parametrize(
    ("key", "secret", "nonce", "expected"),
    [
        (
            "test-api-key",
            "test-secret",
            "1700000000000",
            "2d99fa1b6934f66a712785d1b402997e1b13d9d7cd5e0085211dac133ae4a8ef",
        ),
        ("api", "secret", "nonce-1", "d453af9a65c4ddd1ff17d5b03d3224b906899f3445dc4b4aadb5580260c60586"),
    ],
)
def test_signatures_match_wirokits_golden_vectors(key: str, secret: str, nonce: str, expected: str) -> None:
    assert signature(key, secret, nonce) == expected
