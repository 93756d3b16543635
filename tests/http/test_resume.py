"""A dropped stream loses nothing: SSE events carry ids, a stream opens with a priming event and a
``retry`` hint, and ``GET`` with ``Last-Event-ID`` replays what was missed of that session's
stream, then its result; another session's ``Last-Event-ID`` replays nothing. Raw HTTP against
``serve --http`` in a child process, as a client on a flaky network sends it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest

from wiro_seedream_mcp.emulator import EmulatorServer, Timings

from ..conftest import API_KEY, API_SECRET
from .conftest import HttpServer

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


def open_session(url: str) -> str:
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
    answer = httpx.post(url, content=json.dumps(hello), headers=HEADERS, timeout=30)
    assert answer.status_code == 200, answer.text
    session: str = answer.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    session_headers = {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": VERSION}
    assert httpx.post(url, content=json.dumps(done), headers=session_headers, timeout=30).status_code == 202
    return session


def test_a_dropped_call_stream_is_resumed_with_what_it_missed_and_its_result(
    serve: Serve, http_emulator: Callable[..., EmulatorServer]
) -> None:
    emulator = http_emulator(Timings(queue=0.1, prepare=0.1, generate=3.0, postprocess=0.1))
    server = serve(emulator, WIRO_WAIT_TIMEOUT="30", WIRO_API_KEY=API_KEY, WIRO_API_SECRET=API_SECRET)
    session = open_session(server.url)
    headers = {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": VERSION}
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {
            "name": "generate_image",
            "arguments": {"prompt": "a ferry"},
            "_meta": {"progressToken": "p"},
        },
    }
    before: list[dict[str, Any]] = []
    with httpx.stream("POST", server.url, content=json.dumps(call), headers=headers, timeout=30) as stream:
        for event in events(stream):
            before.append(event)
            if sum(1 for e in before if (e.get("data") or {}).get("method") == "notifications/progress") == 3:
                break  # the connection drops here
    priming = before[0]
    assert priming.get("data") is None and priming["id"] and priming["retry"] == "2000"
    assert all(event.get("id") for event in before)
    last_id = before[-1]["id"]
    last_progress = before[-1]["data"]["params"]["progress"]

    resumed: list[dict[str, Any]] = []
    again = {**headers, "last-event-id": last_id}
    with httpx.stream("GET", server.url, headers=again, timeout=60) as stream:
        assert stream.status_code == 200
        for event in events(stream):
            resumed.append(event)
            if (event.get("data") or {}).get("id") == 2:
                break
    progress = [e["data"]["params"]["progress"] for e in resumed if (e.get("data") or {}).get("method")]
    assert progress and min(progress) > last_progress, (last_progress, progress)
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
