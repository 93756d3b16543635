"""``serve --http`` over real HTTP: both ways of paying, who may call, what each caller sees, and
the protections every bind has. Each server is a child process; the Wiro it talks to is the
emulator, with two projects standing for two people's keys."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp.types import ElicitRequestParams, ElicitResult, ResourceTemplateReference, TextContent
from pydantic import SecretStr

from wiro_seedream_mcp.config import signed_client
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.http import hash_token
from wiro_seedream_mcp.wiro.seedream import RUN_PATH, SeedreamInputs

from ..conftest import API_KEY, API_SECRET
from ..waiting import until_async
from .conftest import (
    OTHER_KEY,
    OTHER_SECRET,
    RUN,
    SCOPE,
    HttpServer,
    Issuer,
    free_port,
    own_key,
    post,
    remote,
)

pytestmark = [pytest.mark.anyio, pytest.mark.child_process]

SLOW = Timings(queue=0.05, prepare=0.05, generate=60, postprocess=0.05)
Serve = Callable[..., HttpServer]


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def test_own_keys_pay_for_their_own_tasks_and_see_only_them(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator()
    server = serve(emulator, WIRO_HTTP_AUTH="key")
    seen: list[float] = []

    async def noted(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with remote(server.url, own_key()) as alice:
        made = await alice.call_tool(
            "generate_image", {"prompt": "a fox in snow", "seed": 7}, progress_callback=noted
        )
        assert made.structured_content["succeeded"] is True, text_of(made)
        taskid = made.structured_content["taskid"]
        mine = await alice.call_tool("list_tasks", {})
        assert [t["taskid"] for t in mine.structured_content["tasks"]] == [taskid]
    # Progress came over SSE while the task ran.
    assert len(seen) >= 3
    assert seen == sorted(seen)
    # Wiro was asked with alice's key, signed with her secret.
    [run] = [r for r in emulator.emulator.requests if r.path.endswith(RUN)]
    assert run.headers["x-api-key"] == API_KEY
    assert "x-signature" in run.headers

    async with remote(server.url, own_key(OTHER_KEY, OTHER_SECRET)) as bob:
        listed = await bob.call_tool("list_tasks", {})
        assert listed.structured_content["tasks"] == []
        for tool, arguments in (
            ("get_task", {"taskid": taskid}),
            ("get_task", {"tasktoken": made.structured_content["socketaccesstoken"]}),
            ("kill_task", {"taskid": taskid}),
            ("cancel_task", {"taskid": taskid}),
        ):
            refused = await bob.call_tool(tool, arguments)
            assert refused.is_error, (tool, text_of(refused))
            assert "is not one of yours" in text_of(refused)
            # A task id or token nobody used gets the same words: no oracle for others' tasks.
            never = {name: "4242424242" if name == "taskid" else "no-such-token" for name in arguments}
            unknown = await bob.call_tool(tool, never)
            same = text_of(refused).replace(taskid, "4242424242")
            assert text_of(unknown) == same, (tool, text_of(unknown))
        resources = await bob.read_resource("wiro://tasks")
        assert taskid not in str(resources.contents[0])
        offered = await bob.complete(
            ResourceTemplateReference(uri="wiro://tasks/{taskid}"), {"name": "taskid", "value": ""}
        )
        assert taskid not in offered.completion.values
        with pytest.raises(Exception, match="not one of yours"):
            await bob.read_resource(f"wiro://tasks/{taskid}")
        with pytest.raises(Exception, match="not one of yours"):
            await bob.read_resource(f"wiro://tasks/{taskid}/outputs/0.png")
    # Bob's stops never reached alice's task (only his made-up id was asked about, and refused).
    assert emulator.emulator.tasks[taskid].stopped is None
    asked = [r.body for r in emulator.emulator.requests if r.path.endswith(("/Task/Kill", "/Task/Cancel"))]
    assert all(taskid.encode() not in body for body in asked), asked
    # No key or secret in the server's log.
    logged = server.logged()
    for secret in (API_KEY, API_SECRET, OTHER_KEY, OTHER_SECRET):
        assert secret not in logged


async def test_team_tokens_are_checked_for_issuer_audience_expiry_and_scope(
    serve: Serve, http_emulator: Callable[..., EmulatorServer], issuer: Issuer
) -> None:
    emulator = http_emulator()
    port = free_port()
    audience = f"http://127.0.0.1:{port}/mcp"
    server = serve(
        emulator,
        port=port,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_OAUTH_ISSUER=issuer.url,
        WIRO_OAUTH_SCOPES=SCOPE,
    )
    metadata_url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    refusals = {
        "missing": None,
        "expired": issuer.token(audience=audience, expires_in=-120),
        "wrong audience": issuer.token(audience="https://elsewhere.example/mcp"),
        "wrong issuer": issuer.token(audience=audience, issuer="https://other-issuer.example"),
        "not a token": "abc.def.ghi",
    }
    for why, token in refusals.items():
        answer = post(server.url, listing, token)
        assert answer.status_code == 401, why
        pointer = answer.headers["www-authenticate"]
        assert pointer.startswith("Bearer "), why
        assert f'resource_metadata="{metadata_url}"' in pointer, (why, pointer)
    # A valid token without the scope: 403 insufficient_scope (RFC 6750, the MCP authorization
    # spec), with the same pointer, so the host can ask for the scope.
    narrow = post(server.url, listing, issuer.token(audience=audience, scope="profile"))
    assert narrow.status_code == 403
    assert 'error="insufficient_scope"' in narrow.headers["www-authenticate"]
    assert f'resource_metadata="{metadata_url}"' in narrow.headers["www-authenticate"]
    # The metadata names this resource, the issuer and the scope.
    described = httpx.get(metadata_url).json()
    assert described["resource"] == audience
    assert described["authorization_servers"] == [issuer.url] or described["authorization_servers"] == [
        issuer.url + "/"
    ]
    assert described["scopes_supported"] == [SCOPE]
    # A good token gets in; the team key pays, and each user sees only their own tasks.
    async with remote(server.url, issuer.token("alice", audience=audience)) as alice:
        made = await alice.call_tool("generate_image", {"prompt": "a heron", "seed": 3})
        assert made.structured_content["succeeded"] is True, text_of(made)
        taskid = made.structured_content["taskid"]
    async with remote(server.url, issuer.token("bob", audience=audience)) as bob:
        assert (await bob.call_tool("list_tasks", {})).structured_content["tasks"] == []
        refused = await bob.call_tool("get_task", {"taskid": taskid})
        assert refused.is_error
        assert "not one of yours" in text_of(refused)
        killed = await bob.call_tool("kill_task", {"taskid": taskid})
        assert killed.is_error
    assert emulator.emulator.count("/Task/Kill") == 0
    async with remote(server.url, issuer.token("alice", audience=audience)) as alice:
        again = await alice.call_tool("get_task", {"taskid": taskid})
        assert again.structured_content["taskid"] == taskid


async def test_static_tokens_are_kept_hashed_and_name_their_user(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator()
    alice_token, bob_token = "wsm_alice-secret-token-0001", "wsm_bob-secret-token-0002"
    server = serve(
        emulator,
        WIRO_API_KEY=API_KEY,
        WIRO_API_SECRET=API_SECRET,
        WIRO_HTTP_TOKENS=f"alice={hash_token(alice_token)},bob={hash_token(bob_token)}",
    )
    guessed = post(server.url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, "wsm_guess")
    assert guessed.status_code == 401
    # No login to point a host at: no resource metadata, and no pointer to it.
    assert "resource_metadata" not in guessed.headers["www-authenticate"]
    assert httpx.get(f"{server.origin}/.well-known/oauth-protected-resource/mcp").status_code == 404
    async with remote(server.url, alice_token) as alice:
        made = await alice.call_tool("generate_image", {"prompt": "a kettle", "seed": 5})
        assert made.structured_content["succeeded"] is True, text_of(made)
    async with remote(server.url, bob_token) as bob:
        assert (await bob.call_tool("list_tasks", {})).structured_content["tasks"] == []
    assert alice_token not in server.logged()


async def test_every_bind_answers_health_alone_and_guards_host_origin_and_body(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    """What every server has, whatever its callers: /healthz answers without asking Wiro, a
    foreign Host gets 421 and a foreign Origin 403 (DNS rebinding), a body past the cap is refused
    (413) before it is read whole, and a body nested past reason is a 400, not a crash."""
    emulator = http_emulator()
    server = serve(emulator, WIRO_HTTP_MAX_BODY="4096")
    before = len(emulator.emulator.requests)
    answer = httpx.get(f"{server.origin}/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert len(emulator.emulator.requests) == before

    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert post(server.url, listing, host="attacker.example").status_code == 421
    assert post(server.url, listing, origin="http://attacker.example").status_code == 403
    assert post(server.url, listing, origin=f"http://127.0.0.1:{server.port}").status_code == 200

    big = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "generate_image", "arguments": {"prompt": "x" * 8000}},
    }
    assert post(server.url, big).status_code == 413

    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    for _ in range(2):  # under the cap, and far deeper than any JSON reader recurses
        answer = httpx.post(server.url, content=b"[" * 4000, headers=headers, timeout=30)
        assert answer.status_code == 400, answer.text
    assert "Traceback" not in server.logged()
    assert httpx.get(f"{server.origin}/healthz", timeout=5).status_code == 200
    assert len(emulator.emulator.requests) == before


def test_a_public_bind_without_auth_is_refused_before_it_listens() -> None:
    """0.0.0.0 without auth: exit 2 and one line saying how, before any socket is opened."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "wiro_seedream_mcp", "serve", "--http", "--host", "0.0.0.0", "--port", "1"],  # noqa: S104
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "", "WIRO_API_KEY": "k" * 12},
    )
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in done.stderr
    assert "WIRO_HTTP_AUTH=key" in done.stderr and "WIRO_OAUTH_ISSUER" in done.stderr
    # Port 1 would need root and a bind; the refusal came before either was tried.
    assert "error while attempting to bind" not in done.stderr
    assert time.monotonic() - started < 30


async def test_past_the_limit_of_running_calls_a_caller_gets_429_and_others_do_not(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator(SLOW)
    server = serve(emulator, WIRO_HTTP_AUTH="key", WIRO_HTTP_MAX_RUNNING="1", WIRO_WAIT_TIMEOUT="30")
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "generate_image", "arguments": {"prompt": "second"}},
    }
    async with remote(server.url, own_key()) as alice, anyio.create_task_group() as tg:
        tg.start_soon(alice.call_tool, "generate_image", {"prompt": "first"})
        await until_async(lambda: emulator.emulator.count(RUN) == 1)
        refused = await anyio.to_thread.run_sync(post, server.url, call, own_key())
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"
        assert "already running" in refused.json()["error_description"]
        assert emulator.emulator.count(RUN) == 1  # nothing was started for it
        # Another caller is not held back by alice's limit.
        async with remote(server.url, own_key(OTHER_KEY, OTHER_SECRET)) as bob:
            started = await bob.call_tool("generate_image", {"prompt": "bob's", "wait": False})
            assert started.structured_content["taskid"], text_of(started)
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("stop_on_cancel", "mode"), [("off", "legacy"), ("off", "auto"), ("on", "legacy"), ("on", "auto")]
)
async def test_a_cancelled_call_over_http_follows_the_cancel_rule(
    serve: Serve, http_emulator: Callable[..., EmulatorServer], stop_on_cancel: str, mode: str
) -> None:
    """Only a person stops a paid task: a cancelled call leaves it running, and the caller's retry
    gets it. WIRO_STOP_ON_CANCEL=on stops it on a cancel notification (what a 2025-11-25 client
    sends); a 2026-07-28 client cancels by dropping the request, which says nothing of why, as a
    time limit does, so the task keeps running there too."""
    emulator = http_emulator(SLOW)
    server = serve(emulator, WIRO_HTTP_AUTH="key", WIRO_WAIT_TIMEOUT="30", WIRO_STOP_ON_CANCEL=stop_on_cancel)
    async with remote(server.url, own_key(), mode=mode) as alice:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(alice.call_tool, "generate_image", {"prompt": "to be stopped"})
                await until_async(
                    lambda: any(
                        t.status(emulator.emulator.clock()) == "task_start"
                        for t in emulator.emulator.tasks.values()
                    )
                )
                tg.cancel_scope.cancel()
        assert not scope.cancelled_caught
        [taskid] = emulator.emulator.tasks
        if (stop_on_cancel, mode) == ("on", "legacy"):
            await until_async(lambda: emulator.emulator.count("/Task/Kill") == 1)
            assert emulator.emulator.tasks[taskid].stopped == "kill"
            return
        await until_async(lambda: "keeps running on Wiro" in server.logged())
        again = await alice.call_tool("generate_image", {"prompt": "to be stopped", "wait": False})
    assert again.structured_content["taskid"] == taskid
    assert emulator.emulator.tasks[taskid].stopped is None
    assert emulator.emulator.count("/Task/Kill") == 0
    assert emulator.emulator.count(RUN_PATH) == 1


async def test_sigterm_hands_back_the_task_and_exits_within_ten_seconds(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator(SLOW)
    server = serve(emulator, WIRO_HTTP_AUTH="key", WIRO_WAIT_TIMEOUT="50")
    answers: list[Any] = []

    async def generate() -> None:
        try:
            async with remote(server.url, own_key(), terminate=False) as alice:
                await alice.list_tools()  # the client checks the answer against the output schema
                answers.append(await alice.call_tool("generate_image", {"prompt": "a long one"}))
        except* httpx.ConnectError:
            # Closing the client may still post a last notification to the server, gone by then.
            assert answers, "the call got no answer before the server exited"

    async with anyio.create_task_group() as tg:
        tg.start_soon(generate)
        await until_async(lambda: emulator.emulator.count(RUN) == 1)
        signalled = time.monotonic()
        assert server.process is not None
        server.process.terminate()
        code = await anyio.to_thread.run_sync(server.process.wait)
        exited = time.monotonic() - signalled
    assert exited < 10, exited
    assert code == 0  # an orderly, drained shutdown
    assert "Traceback" not in server.logged()
    [answer] = answers
    structured = answer.structured_content
    assert structured["taskid"] in emulator.emulator.tasks
    assert structured["done"] is False
    assert "get_task" in text_of(answer)
    # The task goes on: nothing was killed or cancelled.
    assert emulator.emulator.count("/Task/Kill") == 0
    assert emulator.emulator.count("/Task/Cancel") == 0


async def test_a_strangers_refused_key_never_hides_the_price_from_the_owner(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    """A made-up key is refused before any tool runs (so it cannot make a price lookup fail for
    everyone), and the owner then gets Wiro's price and a budgeted task."""
    emulator = http_emulator()
    server = serve(emulator, WIRO_HTTP_AUTH="key", WIRO_BUDGET_USD="1")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert post(server.url, listing, "made-up-key-0000:made-up-secret-0000").status_code == 401
    assert [r.path for r in emulator.emulator.requests if r.path.endswith("/Tool/Detail")] == []
    async with remote(server.url, own_key()) as alice:
        estimate = await alice.call_tool("estimate_cost", {})
        made = await alice.call_tool("generate_image", {"prompt": "priced", "wait": False})
    assert estimate.structured_content["source"] == "wiro-price-list"
    assert not made.is_error, text_of(made)
    assert emulator.emulator.count(RUN_PATH) == 1


async def test_no_key_a_bad_key_or_the_key_alone_never_opens_its_owners_tasks(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    """No key, or one that is not a key, is told what to send (401 with a pointer to Bearer). The
    journal is found by the key, so the key alone must prove nothing: a wrong secret, or
    no secret on a project that signs, is refused (401) before anything is read, and Wiro is
    asked once per pair however many requests come."""
    emulator = http_emulator()
    server = serve(emulator, WIRO_HTTP_AUTH="key")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for bearer in (None, "short", "two words"):
        answer = post(server.url, listing, bearer)
        assert answer.status_code == 401, bearer
        assert answer.headers["www-authenticate"].startswith("Bearer ")
        # No key and a wrong one are told apart, each with what to send.
        said = answer.json()["error_description"]
        assert ("no Wiro key was sent" in said) == (bearer is None), said
        assert ("is not a Wiro API key" in said) == (bearer is not None), said
        assert "Bearer KEY:SECRET" in said and "Bearer KEY:SECRET" in answer.headers["www-authenticate"]
    # A well-formed key Wiro refuses: refused before anything runs, saying so, with no key in it.
    answer = post(server.url, listing, "not-a-real-key-123")
    assert answer.status_code == 401
    assert "Wiro did not accept this key and secret" in answer.json()["error_description"]
    assert "not-a-real-key-123" not in answer.text
    # Callers bring the keys: the server's own missing key is no problem to warn about.
    assert "WIRO_API_KEY is not set" not in server.logged()
    async with remote(server.url, own_key()) as alice:
        made = await alice.call_tool("generate_image", {"prompt": "private", "wait": False})
    taskid = made.structured_content["taskid"]
    listing_tasks = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "list_tasks", "arguments": {}},
    }

    def details() -> int:
        return sum(1 for r in emulator.emulator.requests if r.path.endswith("/Task/Detail"))

    checks_before = details()
    for bearer in (f"{API_KEY}:wrong-secret-000", API_KEY, f"{API_KEY}:wrong-secret-000"):
        answer = post(server.url, listing_tasks, bearer)
        assert answer.status_code == 401, bearer
        assert taskid not in answer.text and "private" not in answer.text
    # One question to Wiro per distinct pair (the repeat is remembered), none for a good one again.
    assert details() - checks_before == 2
    async with remote(server.url, own_key()) as alice:
        listed = await alice.call_tool("list_tasks", {})
    assert [t["taskid"] for t in listed.structured_content["tasks"]] == [taskid]


async def test_your_own_task_started_elsewhere_stays_yours(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    """A task started on the same key outside this server (the dashboard, a script): get_task with
    that key finds it every time, the journal files it under that key's owner (never under
    nobody), and another key is told it is not theirs."""
    emulator = http_emulator()
    server = serve(emulator, WIRO_HTTP_AUTH="key")
    async with httpx.AsyncClient() as http:
        client = signed_client(http, emulator.base_url, SecretStr(API_KEY), SecretStr(API_SECRET))
        receipt = await client.run(SeedreamInputs(prompt="started elsewhere"))
    taskid = receipt.taskid
    async with remote(server.url, own_key()) as alice:
        for _ in range(2):
            looked = await alice.call_tool("get_task", {"taskid": taskid})
            assert not looked.is_error, text_of(looked)
            assert looked.structured_content["taskid"] == taskid
        listed = await alice.call_tool("list_tasks", {})
        assert taskid in [t["taskid"] for t in listed.structured_content["tasks"]]
    async with remote(server.url, own_key(OTHER_KEY, OTHER_SECRET)) as bob:
        refused = await bob.call_tool("get_task", {"taskid": taskid})
        assert refused.is_error
        assert "not one of yours" in text_of(refused)


async def test_a_question_nobody_answers_holds_none_of_the_callers_running_slots(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    """WIRO_HTTP_MAX_RUNNING=1 and WIRO_CONFIRM=always: while one call waits for a person who does not
    answer, the same caller's next call is asked, starts and runs; the first, confirmed while it
    runs, finds the slot taken and starts nothing."""
    emulator = http_emulator(SLOW)
    server = serve(emulator, WIRO_HTTP_AUTH="key", WIRO_HTTP_MAX_RUNNING="1", WIRO_CONFIRM="always")
    asked, answer = anyio.Event(), anyio.Event()

    async def slow_person(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.set()
        await answer.wait()
        return ElicitResult(action="accept", content={"start": True})

    async def quick_person(context: Any, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"start": True})

    results: list[Any] = []
    async with (
        remote(server.url, own_key(), mode="legacy", elicitation_callback=slow_person) as first,
        remote(server.url, own_key(), mode="legacy", elicitation_callback=quick_person) as second,
        anyio.create_task_group() as tg,
    ):

        async def waiting() -> None:
            results.append(await first.call_tool("generate_image", {"prompt": "unanswered", "wait": False}))

        tg.start_soon(waiting)
        await asked.wait()
        # The second call is asked, starts, and keeps running (it waits for its image).
        tg.start_soon(second.call_tool, "generate_image", {"prompt": "answered"})
        await until_async(lambda: emulator.emulator.count(RUN) == 1)
        answer.set()
        await until_async(lambda: bool(results))
        tg.cancel_scope.cancel()
    [late] = results
    assert late.is_error
    assert "already has 1 generate_image call(s) running" in text_of(late)
    assert emulator.emulator.count(RUN) == 1
