"""A dropped stream loses nothing: SSE events carry ids, a stream opens with a priming event and a
``retry`` hint, and ``GET`` with ``Last-Event-ID`` replays what was missed of that session's
stream, then its result; another session's ``Last-Event-ID`` replays nothing. Raw HTTP against
``serve --http`` in a child process, as a client on a flaky network sends it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import asyncpg
import httpx2 as httpx
import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from ..conftest import API_KEY, API_SECRET
from ..postgres import fresh_database
from .conftest import OTHER_KEY, OTHER_SECRET, HttpServer, own_key

pytestmark = [pytest.mark.child_process]

Serve = Callable[..., HttpServer]
VERSION = "2025-11-25"
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The server-sent events of a response: id, retry and the JSON data, as they come."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if event:
                yield event
            event = {}
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            event["data"] = json.loads(value) if value else None
        elif name in ("id", "retry"):
            event[name] = value


def open_session(url: str, **extra: str) -> str:
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "flaky", "version": "1"},
        },
    }
    answer = httpx.post(url, content=json.dumps(hello), headers={**HEADERS, **extra}, timeout=30)
    assert answer.status_code == 200, answer.text
    session: str = answer.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    session_headers = {**HEADERS, **extra, "mcp-session-id": session, "mcp-protocol-version": VERSION}
    assert httpx.post(url, content=json.dumps(done), headers=session_headers, timeout=30).status_code == 202
    return session


def call_then_drop(
    url: str, headers: dict[str, str], ident: int = 2, prompt: str = "a ferry"
) -> list[dict[str, Any]]:
    """A ``generate_image`` whose stream is dropped after three progress events: what came."""
    call = {
        "jsonrpc": "2.0",
        "id": ident,
        "method": "tools/call",
        "params": {
            "name": "generate_image",
            "arguments": {"prompt": prompt},
            "_meta": {"progressToken": "p"},
        },
    }
    before: list[dict[str, Any]] = []
    with httpx.stream("POST", url, content=json.dumps(call), headers=headers, timeout=30) as stream:
        for event in events(stream):
            before.append(event)
            if sum(1 for e in before if (e.get("data") or {}).get("method") == "notifications/progress") == 3:
                break  # the connection drops here
    return before


def resumed_until_the_answer(
    url: str, headers: dict[str, str], last_id: str, ident: int = 2
) -> list[dict[str, Any]]:
    resumed: list[dict[str, Any]] = []
    with httpx.stream("GET", url, headers={**headers, "last-event-id": last_id}, timeout=60) as stream:
        assert stream.status_code == 200, stream.read()
        for event in events(stream):
            resumed.append(event)
            if (event.get("data") or {}).get("id") == ident:
                break
    return resumed


def test_a_dropped_call_stream_is_resumed_with_what_it_missed_and_its_result(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator(Timings(queue=0.1, prepare=0.1, generate=3.0, postprocess=0.1))
    server = serve(emulator, WIRO_WAIT_TIMEOUT="30", WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET)
    session = open_session(server.url)
    headers = {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": VERSION}
    before = call_then_drop(server.url, headers)
    priming = before[0]
    assert priming.get("data") is None and priming["id"] and priming["retry"] == "2000"
    assert all(event.get("id") for event in before)
    last_id = before[-1]["id"]
    last_progress = before[-1]["data"]["params"]["progress"]

    resumed = resumed_until_the_answer(server.url, headers, last_id)
    progress = [e["data"]["params"]["progress"] for e in resumed if (e.get("data") or {}).get("method")]
    assert progress and min(progress) > last_progress, (last_progress, progress)
    assert progress == sorted(set(progress))  # in order, none twice
    ids = [event["id"] for event in before + resumed]
    assert len(ids) == len(set(ids))
    [result] = [e["data"]["result"] for e in resumed if (e.get("data") or {}).get("id") == 2]
    assert result["structuredContent"]["succeeded"] is True
    assert len(emulator.emulator.tasks) == 1

    # Another session naming that event gets none of it.
    stranger = open_session(server.url)
    theirs = {
        **HEADERS,
        "mcp-session-id": stranger,
        "mcp-protocol-version": VERSION,
        "last-event-id": last_id,
    }
    with httpx.stream("GET", server.url, headers=theirs, timeout=10) as stream:
        seen = [event for event in events(stream) if event.get("data")]
    assert seen == []


@pytest.mark.anyio
async def test_a_stream_dropped_on_one_replica_resumes_on_another_through_postgresql(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator(Timings(queue=0.1, prepare=0.1, generate=3.0, postprocess=0.1))
    async with fresh_database() as database:
        shared = {"WIRO_JOURNAL_URL": database, "WIRO_HTTP_AUTH": "key", "WIRO_WAIT_TIMEOUT": "30"}
        first, second = serve(emulator, **shared), serve(emulator, **shared)
        last_id, resumed = await anyio.to_thread.run_sync(resume_on_the_other, first, second)
        # Exactly what the first replica stored after that event: none lost, none twice.
        conn = await asyncpg.connect(database)
        try:
            token, _, row = last_id.partition(":")
            stored = await conn.fetch(
                "SELECT id FROM events WHERE scope = $1 AND id > $2 AND message IS NOT NULL"
                " AND stream = (SELECT stream FROM events WHERE id = $2) ORDER BY id",
                token,
                int(row),
            )
        finally:
            await conn.close()
        assert resumed == [f"{token}:{r['id']}" for r in stored]
    assert len(emulator.emulator.tasks) == 2


def resume_on_the_other(first: HttpServer, second: HttpServer) -> tuple[str, list[str]]:
    """The session and its call on the first replica; the stream dropped and resumed on the second,
    which sends what the first goes on storing, to the end."""
    mine = {"authorization": f"Bearer {own_key()}"}
    session = open_session(first.url, **mine)
    headers = {**HEADERS, **mine, "mcp-session-id": session, "mcp-protocol-version": VERSION}
    before = call_then_drop(first.url, headers)
    last_id = before[-1]["id"]
    assert ":" in last_id  # an event kept in the database
    last_progress = before[-1]["data"]["params"]["progress"]

    # Someone else's key with that session and event: nothing, and no sign of whose it is.
    other = f"Bearer {own_key(OTHER_KEY, OTHER_SECRET)}"
    theirs = {**headers, "authorization": other, "last-event-id": last_id}
    refused = httpx.get(second.url, headers=theirs, timeout=10)
    assert refused.status_code == 404, refused.text

    resumed = resumed_until_the_answer(second.url, headers, last_id)
    assert all(event["id"].startswith(last_id.split(":")[0]) for event in resumed)
    progress = [e["data"]["params"]["progress"] for e in resumed if (e.get("data") or {}).get("method")]
    assert progress and min(progress) > last_progress, (last_progress, progress)
    [result] = [e["data"]["result"] for e in resumed if (e.get("data") or {}).get("id") == 2]
    assert result["structuredContent"]["succeeded"] is True

    # And on the replica that holds the session, from the database too.
    before = call_then_drop(first.url, headers, ident=3, prompt="a second ferry")
    again = resumed_until_the_answer(first.url, headers, before[-1]["id"], ident=3)
    [result] = [e["data"]["result"] for e in again if (e.get("data") or {}).get("id") == 3]
    assert result["structuredContent"]["succeeded"] is True
    return last_id, [event["id"] for event in resumed]
