"""Fuzzing every tool over one real stdio session, from the published input schemas.

Hypothesis draws arguments that the schemas allow (built from each property's published
schema: its types, enum, bounds, lengths, and null for optional ones) and arguments that they
do not (wrong types, out-of-range numbers, junk strings, unknown values), and calls the
tools with them, one after another, on one server process. Every call must answer, in time;
every refusal must be one line without validator tags; no invalid input may start a Run.

The schema check judges the arguments as the server receives them: the JSON the client writes
(a float that JSON cannot carry, such as infinity, arrives as ``null``, which means "not given").

``WIRO_FUZZ_CALLS`` sets the number of calls (CI runs 2,000; a plain run 300), and
``WIRO_FUZZ_SEED`` the seed: CI fixes it, so a red run is a failure anyone can repeat; a plain run
draws a new one each time and prints it.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, JSONRPCRequest, TextContent

from wiro_seedream_mcp.config import ANSWER_MARGIN
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import API_KEY, API_SECRET
from ..spawn import stdio_params

CALLS = int(os.environ.get("WIRO_FUZZ_CALLS", "300"))
SEED = int(os.environ.get("WIRO_FUZZ_SEED") or random.randrange(2**32))
WAIT = 2.0
# The longest any call may take: the longest wait it may be given, the margin, and room for a
# loaded machine.
LATEST = WAIT + ANSWER_MARGIN + 3.0

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\ufeff", "\u200b", "\x00", "5", "7.5", "true", "yes", "999x999", "-1"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def from_property(prop: dict[str, Any]) -> st.SearchStrategy[Any]:  # noqa: PLR0911 - one per type
    """Values a property's published schema allows (the keywords these tools use)."""
    if "anyOf" in prop:
        return st.one_of([from_property(branch) for branch in prop["anyOf"]])
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    kind = prop.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(prop.get("minimum", -(2**31)), prop.get("maximum", 2**31))
    if kind == "number":
        return st.floats(prop.get("minimum", -1e9), prop.get("maximum", 1e9), allow_nan=False)
    if kind == "string":
        if prop.get("format") == "uri":
            return st.sampled_from(
                ["https://hooks.example.com/done", "http://127.0.0.1:9/cb", "https://x.example"]
            )
        text = st.text(min_size=prop.get("minLength", 0), max_size=min(prop.get("maxLength", 80), 80))
        return text.filter(lambda t: "pattern" not in prop or any(not c.isspace() for c in t))
    raise AssertionError(f"no strategy for {prop}")


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Argument objects the schema allows: every required property, any of the others."""
    props = schema["properties"]
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: from_property(props[name]) for name in props if name in required},
        optional={name: from_property(props[name]) for name in props if name not in required},
    )


def unset_blanks(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The documented rule, written out here on its own: for an optional argument, null and a
    blank string mean "not given"."""
    required = set(schema.get("required", []))
    return {
        k: v
        for k, v in arguments.items()
        if k in required or not (v is None or (isinstance(v, str) and not v.strip()))
    }


def allowed(arguments: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether the published schema accepts the arguments, once blanks count as unset."""
    try:
        jsonschema.validate(unset_blanks(arguments, schema), schema)
    except jsonschema.ValidationError:
        return False
    return True


def as_sent(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments as they reach the server: the request as the stdio client writes it."""
    request = JSONRPCRequest(
        jsonrpc="2.0", id=1, method="tools/call", params={"name": name, "arguments": arguments}
    )
    sent: dict[str, Any] = json.loads(request.model_dump_json(by_alias=True, exclude_unset=True))
    return dict(sent["params"]["arguments"])


def test_the_check_sees_what_arrives() -> None:
    # Infinity cannot be written in JSON: the client sends null, which the server reads as unset.
    schema = {"type": "object", "properties": {"seed": {"type": "integer", "minimum": 0}}}
    assert as_sent("x", {"seed": math.inf}) == {"seed": None}
    assert allowed(as_sent("x", {"seed": math.inf}), schema)
    assert not allowed(as_sent("x", {"seed": -1}), schema)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


@pytest.fixture
def session(emulator_factory: Any, tmp_path: Path) -> Iterator[tuple[BlockingPortal, Client, EmulatorServer]]:
    server: EmulatorServer = emulator_factory(timings=Timings.instant())
    env = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_API_BASE_URL": server.base_url,
        "WIRO_STATE_DIR": str(tmp_path),
        "WIRO_WAIT_TIMEOUT": str(WAIT),
        "WIRO_LOG_LEVEL": "ERROR",
    }
    params = stdio_params(env, "serve")
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(params)) as client:
        yield portal, client, server


def test_fuzz_every_tool_from_its_schema(session: tuple[BlockingPortal, Client, EmulatorServer]) -> None:
    portal, client, server = session
    tools = {tool.name: tool.input_schema for tool in portal.call(client.list_tools).tools}
    stats = {"calls": 0, "invalid": 0, "runs": 0, "slowest": 0.0}

    def arguments(name: str) -> st.SearchStrategy[dict[str, Any]]:
        schema = tools[name]
        valid = from_schema(schema)
        props = sorted(schema["properties"])
        spoiled = st.tuples(valid, st.sampled_from(props), JUNK).map(lambda t: {**t[0], t[1]: t[2]})
        return st.one_of(
            valid, valid, valid, spoiled, st.dictionaries(st.sampled_from(props), JUNK, max_size=4)
        )

    calls = st.sampled_from(sorted(tools)).flatmap(lambda name: st.tuples(st.just(name), arguments(name)))

    print(f"fuzz seed {SEED} (WIRO_FUZZ_SEED={SEED} repeats this run)")

    @seed(SEED)
    @settings(
        max_examples=CALLS,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(calls)
    def one_call(call: tuple[str, dict[str, Any]]) -> None:
        name, args = call
        if name == "generate_image" and isinstance(args.get("prompt"), str):
            args = {**args, "wait": False} if args.get("wait") is not True else args
        runs_before = server.emulator.count(RUN_PATH)
        began = time.monotonic()
        result = portal.call(client.call_tool, name, args)
        took = time.monotonic() - began
        stats["calls"] += 1
        stats["slowest"] = max(stats["slowest"], took)
        new_runs = server.emulator.count(RUN_PATH) - runs_before
        stats["runs"] += new_runs
        assert took < LATEST, f"{name}({args!r}) took {took:.1f} s"
        if not allowed(as_sent(name, args), tools[name]):
            stats["invalid"] += 1
            assert result.is_error, f"{name}({args!r}) was accepted"
            assert new_runs == 0, f"{name}({args!r}) started a Run"
        count = args.get("count") if name == "generate_image" else None
        assert new_runs <= (count if isinstance(count, int) and 1 <= count <= 4 else 1)  # one task per image
        if result.is_error:
            text = text_of(result)
            assert "\n" not in text, text
            for tag in ("type=", "input_value", "errors.pydantic.dev", "Traceback", "validation error"):
                assert tag not in text, text

    one_call()
    print(f"fuzz: {stats}")
    assert stats["calls"] >= CALLS * 0.9
    assert stats["invalid"] > 0 and stats["runs"] > 0  # both sides were exercised
    assert math.isfinite(stats["slowest"])
