"""The four tools through a real MCP client session (in memory), against the live emulator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceLink,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
    TextContent,
    TextResourceContents,
)
from pydantic import SecretStr

from wiro_seedream_mcp import subscriptions
from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import ERROR_MARKER, FAIL_MARKER, EmulatorServer, Project, Timings
from wiro_seedream_mcp.journal import Journal
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from .conftest import API_KEY, API_SECRET, TOOL_NAMES, connect, settings_for
from .waiting import until_async

pytestmark = pytest.mark.anyio

QUEUED = Timings(queue=60, prepare=1, generate=1, postprocess=1)
RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)
SIZES = ["1024x1024", "864x1152", "1152x864", "1280x720", "720x1280", "832x1248", "1248x832", "1512x648"]


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict)
    return result.structured_content


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both the discovery protocol and the initialize handshake that desktop hosts use."""
    return str(request.param)


def own(prop: dict[str, Any]) -> dict[str, Any]:
    """The branch of an optional argument's schema that is not ``null`` (it must have one)."""
    branches = prop["anyOf"]
    assert {"type": "null"} in branches, prop
    others = [b for b in branches if b != {"type": "null"}]
    assert len(others) == 1, prop
    return {**others[0], **{k: v for k, v in prop.items() if k != "anyOf"}}


async def test_tools_list_schemas_exactly(mode: str) -> None:
    async with connect(Settings(), mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert list(tools) == TOOL_NAMES

    gen = tools["generate_image"].input_schema
    props = gen["properties"]
    assert gen["required"] == ["prompt"]
    assert list(props) == [
        *("prompt", "size", "watermark", "guidanceScale", "seed", "callbackUrl"),
        *("wait", "new_task", "count"),
    ]
    assert props["prompt"]["type"] == "string"
    assert (props["prompt"]["minLength"], props["prompt"]["maxLength"]) == (1, 10_000)
    assert "default" not in props["prompt"]
    # Every optional argument accepts null (strict function calling sends every property).
    size = own(props["size"])
    assert size == {**size, "type": "string", "enum": SIZES, "default": "1024x1024"}
    for size_name, ratio in [("1024x1024", "1:1"), ("1512x648", "21:9"), ("720x1280", "9:16")]:
        assert f"{size_name} ({ratio})" in size["description"]
    watermark = own(props["watermark"])
    assert watermark["type"] == "boolean"
    assert watermark["default"] is False
    guidance = own(props["guidanceScale"])
    assert guidance["type"] == "number"
    assert (guidance["minimum"], guidance["maximum"], guidance["default"]) == (1, 10, 1)
    seed = own(props["seed"])
    assert seed["type"] == "integer"
    assert (seed["minimum"], seed["maximum"], seed["default"]) == (0, 2147483647, 1)
    callback = own(props["callbackUrl"])
    assert callback["type"] == "string"
    assert callback["pattern"] == "^https?://"
    assert "default" not in callback
    wait = own(props["wait"])
    assert wait["type"] == "boolean"
    assert wait["default"] is True
    new_task = own(props["new_task"])
    assert (new_task["type"], new_task["default"]) == ("boolean", False)
    count = own(props["count"])
    assert (count["type"], count["minimum"], count["maximum"], count["default"]) == ("integer", 1, 4, 1)
    for name, prop in props.items():
        assert prop.get("description"), name
        assert "video" not in prop["description"].lower(), name

    get = tools["get_task"].input_schema
    assert list(get["properties"]) == ["taskid", "tasktoken", "wait"]
    assert get.get("required", []) == []
    get_wait = own(get["properties"].pop("wait"))
    assert get_wait["type"] == "number"
    # 0 to the configured wait limit (50 s unless WIRO_WAIT_TIMEOUT says otherwise).
    assert (get_wait["minimum"], get_wait["maximum"], get_wait["default"]) == (0, 50, 0)
    kill = tools["kill_task"].input_schema
    assert set(kill["properties"]) == {"taskid", "socketaccesstoken"}
    assert kill.get("required", []) == []
    cancel = tools["cancel_task"].input_schema
    assert set(cancel["properties"]) == {"taskid"}
    assert cancel["required"] == ["taskid"]
    # A task id may be a string or a number; only an optional one may be null.
    id_branches = [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}]
    assert cancel["properties"]["taskid"]["anyOf"] == id_branches
    for schema in (get, kill):
        assert schema["properties"]["taskid"]["anyOf"] == [*id_branches, {"type": "null"}]
        token = next(name for name in schema["properties"] if name != "taskid")
        assert own(schema["properties"][token])["type"] == "string"

    estimate = tools.pop("estimate_cost")
    assert list(estimate.input_schema["properties"]) == [
        "size",
        "watermark",
        "guidanceScale",
        "seed",
        "count",
    ]
    assert own(estimate.input_schema["properties"]["size"])["enum"] == SIZES
    assert estimate.annotations is not None
    assert estimate.annotations.read_only_hint is True
    assert estimate.output_schema is not None
    assert set(estimate.output_schema["properties"]) == {"usd", "source", "basis", "count", "totalusd"}

    listing = tools.pop("list_tasks")
    limit = own(listing.input_schema["properties"]["limit"])
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 100, 20)
    assert listing.annotations is not None
    assert listing.annotations.read_only_hint is True
    assert listing.output_schema is not None
    assert "tasks" in listing.output_schema["properties"]
    for tool in tools.values():
        assert tool.output_schema is not None
        assert set(tool.output_schema["properties"]) >= {
            "taskid",
            "socketaccesstoken",
            "status",
            "done",
            "succeeded",
            "outputs",
            "totalcost",
            "estimate",
            "elapsedseconds",
            "error",
        }
        assert tool.annotations is not None
        assert tool.annotations.open_world_hint is True
        assert tool.title
    assert tools["get_task"].annotations and tools["get_task"].annotations.read_only_hint is True
    for name in ("kill_task", "cancel_task"):
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.destructive_hint is True
        assert annotations.read_only_hint is False
    gen_annotations = tools["generate_image"].annotations
    assert gen_annotations is not None
    assert gen_annotations.read_only_hint is False
    assert gen_annotations.destructive_hint is False


async def test_generate_image_returns_links_text_and_structured(emulator: EmulatorServer, mode: str) -> None:
    async with connect(settings_for(emulator), mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("generate_image", {"prompt": "a red fox in snow", "size": "1152x864"})
    assert not result.is_error, text_of(result)
    data = structured(result)
    output_schema = tools["generate_image"].output_schema
    assert output_schema is not None
    jsonschema.validate(data, output_schema)
    assert data["done"] is True
    assert data["succeeded"] is True
    assert data["status"] == "task_postprocess_end"
    assert data["error"] is None
    assert data["totalcost"] > 0
    [output] = data["outputs"]
    assert output["contenttype"] == "image/png"
    [link] = [block for block in result.content if isinstance(block, ResourceLink)]
    assert str(link.uri) == output["url"]
    assert link.mime_type == "image/png"
    assert link.size == output["size"]
    assert link.name == "0.png"
    text = text_of(result)
    assert data["taskid"] in text
    assert output["url"] in text
    assert "task_postprocess_end" in text
    task = emulator.emulator.tasks[data["taskid"]]
    assert task.inputs["size"] == "1152x864"
    assert data["socketaccesstoken"] == task.token


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n"}, "the prompt is blank"),
        ({"prompt": "x", "size": "1000x1000"}, "size"),
        ({"prompt": "x", "guidanceScale": 0.5}, "guidanceScale"),
        ({"prompt": "x", "guidanceScale": 10.01}, "guidanceScale"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "seed": 2147483648}, "seed"),
        ({"prompt": "x", "seed": 1.5}, "seed"),
        ({"prompt": "x", "watermark": "maybe"}, "watermark"),
        ({"prompt": "x", "callbackUrl": "ftp://example.com/hook"}, "callbackUrl must be an absolute http"),
        ({"prompt": "x", "callbackUrl": "example.com/hook"}, "callbackUrl must be an absolute http"),
    ],
)
async def test_invalid_input_is_refused_before_any_paid_call(
    emulator: EmulatorServer, arguments: dict[str, Any], words: str
) -> None:
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool("generate_image", arguments)
    assert result.is_error
    assert words in text_of(result)
    assert emulator.emulator.requests == []


async def test_all_inputs_reach_wiro_as_documented(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool(
            "generate_image",
            {
                "prompt": "lion",
                "size": "1512x648",
                "watermark": True,
                "guidanceScale": 7.5,
                "seed": 0,
                "callbackUrl": "https://example.com/done",
            },
        )
    assert not result.is_error
    run = next(r for r in emulator.emulator.requests if r.path.endswith(RUN_PATH))
    assert run.json() == {
        "prompt": "lion",
        "size": "1512x648",
        "watermark": "true",
        "guidanceScale": 7.5,
        "seed": 0,
        "callbackUrl": "https://example.com/done",
    }


async def test_failed_task_is_an_error_that_names_the_task(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool("generate_image", {"prompt": f"fox {FAIL_MARKER}"})
    assert result.is_error
    data = structured(result)
    assert data["done"] is True
    assert data["succeeded"] is False
    assert data["outputs"] == []
    assert "exited with code 1" in data["error"]
    assert data["taskid"] in text_of(result)
    assert "Emulated failure" in text_of(result)


async def test_task_error_is_an_error(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool("generate_image", {"prompt": f"fox {ERROR_MARKER}"})
    assert result.is_error
    assert structured(result)["status"] == "task_error"
    assert "could not be started" in text_of(result)


async def test_wait_limit_hands_back_the_task(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=QUEUED)
    async with connect(settings_for(server, wait_timeout=0.3)) as client:
        result = await client.call_tool("generate_image", {"prompt": "slow fox"})
        assert not result.is_error
        data = structured(result)
        assert data["done"] is False
        assert data["status"] == "task_queue"
        assert data["socketaccesstoken"]
        assert f'get_task with taskid "{data["taskid"]}"' in data["next"]
        assert "get_task" in text_of(result)
        # The task is there and can be picked up by id or by token.
        by_id = await client.call_tool("get_task", {"taskid": data["taskid"]})
        by_token = await client.call_tool("get_task", {"tasktoken": data["socketaccesstoken"]})
    assert structured(by_id)["taskid"] == structured(by_token)["taskid"] == data["taskid"]
    assert structured(by_id)["status"] == "task_queue"
    assert server.emulator.count(RUN_PATH) == 1


async def test_get_task_returns_the_finished_image(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        made = structured(await client.call_tool("generate_image", {"prompt": "fox"}))
        again = await client.call_tool("get_task", {"taskid": made["taskid"]})
    assert not again.is_error
    assert structured(again)["outputs"] == made["outputs"]
    assert any(isinstance(block, ResourceLink) for block in again.content)


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        ("get_task", {}, "Give exactly one of taskid or tasktoken"),
        ("get_task", {"taskid": "1", "tasktoken": "t"}, "not both"),
        ("get_task", {"taskid": "  "}, "not neither"),
        ("kill_task", {}, "Give exactly one of taskid or socketaccesstoken"),
        ("kill_task", {"taskid": "1", "socketaccesstoken": "t"}, "not both"),
        ("cancel_task", {}, "taskid"),
        ("cancel_task", {"taskid": ""}, "taskid"),
    ],
)
async def test_task_tools_need_exactly_one_identifier(
    emulator: EmulatorServer, tool: str, arguments: dict[str, Any], words: str
) -> None:
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert words in text_of(result)
    assert emulator.emulator.requests == []


async def test_get_task_unknown(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        result = await client.call_tool("get_task", {"taskid": "31337"})
    assert result.is_error
    assert "There is no task yet." in text_of(result)
    assert "31337" in text_of(result)


async def test_cancel_task_while_queued(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=QUEUED)
    settings = dataclasses.replace(settings_for(server, wait_timeout=0), state_dir=tmp_path)
    async with connect(settings) as client:
        started = structured(await client.call_tool("generate_image", {"prompt": "x"}))
        result = await client.call_tool("cancel_task", {"taskid": started["taskid"]})
    assert not result.is_error
    assert structured(result)["status"] == "task_cancel"
    assert "Cancel requested" in text_of(result)
    entry = await Journal(tmp_path).get(started["taskid"])
    assert entry is not None and entry.status == "task_cancel"
    assert server.emulator.task_status(started["taskid"]) == "task_cancel"


async def test_cancel_task_while_running_points_to_kill(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(timings=RUNNING)
    settings = dataclasses.replace(settings_for(server, wait_timeout=0), state_dir=tmp_path)
    async with connect(settings) as client:
        started = structured(await client.call_tool("generate_image", {"prompt": "x"}))
        refused = await client.call_tool("cancel_task", {"taskid": started["taskid"]})
        killed = await client.call_tool("kill_task", {"socketaccesstoken": started["socketaccesstoken"]})
    assert refused.is_error
    assert "not in a cancellable state" in text_of(refused)
    assert "kill_task" in text_of(refused)
    assert not killed.is_error
    assert structured(killed)["status"] == "task_cancel"
    assert server.emulator.tasks[started["taskid"]].stopped == "kill"
    # The journal has the task as the kill left it, for list_tasks and a restart.
    entry = await Journal(tmp_path).get(started["taskid"])
    assert entry is not None and entry.status == "task_cancel"


async def test_missing_credentials(mode: str) -> None:
    async with connect(Settings(), mode) as client:
        assert len((await client.list_tools()).tools) == 6
        for tool, arguments in [
            ("generate_image", {"prompt": "x"}),
            ("get_task", {"taskid": "1"}),
            ("kill_task", {"taskid": "1"}),
            ("cancel_task", {"taskid": "1"}),
        ]:
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            assert "WIRO_API_KEY" in text_of(result)


async def test_auth_failure_is_explained_without_secrets(emulator: EmulatorServer) -> None:
    settings = settings_for(emulator)
    wrong = Settings(api_key=settings.api_key, api_secret=None, base_url=settings.base_url)
    async with connect(wrong) as client:
        result = await client.call_tool("generate_image", {"prompt": "x"})
    assert result.is_error
    text = text_of(result)
    assert "Project requires signature authentication" in text
    assert API_KEY not in text
    assert API_SECRET not in text
    assert emulator.emulator.tasks == {}


async def test_key_only_project_end_to_end(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(project=Project(api_key="solo-key", api_secret=None))
    async with connect(settings_for(server, secret=False)) as client:
        result = await client.call_tool("generate_image", {"prompt": "x"})
    assert structured(result)["succeeded"] is True


async def test_concurrency_limit_gives_advice(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(timings=QUEUED, max_active=1)
    async with connect(settings_for(server, wait_timeout=0)) as client:
        first = await client.call_tool("generate_image", {"prompt": "x"})
        second = await client.call_tool("generate_image", {"prompt": "y"})
    assert not first.is_error
    assert second.is_error
    assert "error code 96" in text_of(second)
    assert "Wait for a running task to end" in text_of(second)


async def test_unreachable_wiro_is_explained() -> None:
    dead = Settings(api_key=SecretStr("k"), api_secret=SecretStr("s"), base_url="http://127.0.0.1:9/v1")
    async with connect(dead) as client:
        result = await client.call_tool("generate_image", {"prompt": "x"})
    assert result.is_error
    assert "could not connect to Wiro at http://127.0.0.1:9/v1" in text_of(result)


async def test_kill_task_while_queued_points_to_cancel(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=QUEUED)
    async with connect(settings_for(server, wait_timeout=0)) as client:
        started = structured(await client.call_tool("generate_image", {"prompt": "x", "wait": False}))
        refused = await client.call_tool("kill_task", {"taskid": started["taskid"]})
    assert refused.is_error
    assert "not in a killable state" in text_of(refused)
    assert "cancel_task" in text_of(refused)
    assert server.emulator.task_status(started["taskid"]) == "task_queue"


async def test_invalid_configuration_is_reported_by_every_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp import Client

    from wiro_seedream_mcp.app import build_server

    monkeypatch.setenv("WIRO_API_KEY", API_KEY)
    monkeypatch.setenv("WIRO_WAIT_TIMEOUT", "soon")
    async with Client(build_server()) as client:
        assert len((await client.list_tools()).tools) == 6
        result = await client.call_tool("generate_image", {"prompt": "x"})
    assert result.is_error
    assert "configuration is invalid: WIRO_WAIT_TIMEOUT must be a number of seconds" in text_of(result)


async def test_a_stop_on_a_task_that_ended_answers_with_its_final_state(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    """Repeating a stop, or stopping a finished task, says nothing was stopped, and is no error
    (the tools are annotated idempotent)."""
    server = emulator_factory(timings=RUNNING)
    async with connect(settings_for(server, wait_timeout=0)) as client:
        started = structured(await client.call_tool("generate_image", {"prompt": "x"}))
        taskid = started["taskid"]
        first = await client.call_tool("kill_task", {"taskid": taskid})
        again = await client.call_tool("kill_task", {"taskid": taskid})
        cancel = await client.call_tool("cancel_task", {"taskid": taskid})
        server.emulator.timings = Timings.instant()
        done = structured(await client.call_tool("generate_image", {"prompt": "finished", "seed": 0}))
        # With no wait the answer can come in the task's last milliseconds: let it end first.
        await until_async(lambda: server.emulator.task_status(done["taskid"]) == "task_postprocess_end")
        late = await client.call_tool("kill_task", {"socketaccesstoken": done["socketaccesstoken"]})
    assert not first.is_error
    for answer in (again, cancel):
        assert not answer.is_error, text_of(answer)
        assert structured(answer)["status"] == "task_cancel"
        assert "already ended" in text_of(answer) and "nothing was stopped" in text_of(answer)
    assert not late.is_error, text_of(late)
    assert structured(late)["status"] == "task_postprocess_end"
    assert "nothing was stopped" in text_of(late)
    assert "cancel_task" not in text_of(late)
    assert server.emulator.tasks[done["taskid"]].stopped is None


@pytest.mark.anyio
async def test_resource_links_can_be_left_out_for_clients_that_reject_them(emulator: EmulatorServer) -> None:
    import dataclasses

    from mcp.types import ResourceLink, TextContent

    for links in (True, False):
        settings = dataclasses.replace(settings_for(emulator), resource_links=links)
        async with connect(settings) as client:
            made = await client.call_tool("generate_image", {"prompt": f"links {links}"})
        url = made.structured_content["outputs"][0]["url"]
        blocks = [b for b in made.content if isinstance(b, ResourceLink)]
        assert [str(b.uri) for b in blocks] == ([url] if links else [])
        # The link still reaches the agent, in the text and in structuredContent.
        assert any(isinstance(b, TextContent) and url in b.text for b in made.content)


@pytest.mark.anyio
async def test_every_tool_publishes_that_it_takes_no_other_arguments(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        tools = (await client.list_tools()).tools
        refused = await client.call_tool("list_tasks", {"limt": 5})
    assert {tool.name: tool.input_schema.get("additionalProperties") for tool in tools} == dict.fromkeys(
        TOOL_NAMES, False
    )
    assert refused.is_error
    assert text_of(refused) == "list_tasks has no argument 'limt'; it takes limit"


def test_only_wiros_no_such_task_reads_as_someone_elses_for_a_scoped_caller() -> None:
    """For callers who see only their own tasks, Wiro's "no such task" gets the same words as
    another caller's task; a refusal about the task's state (it exists) does not."""
    from types import SimpleNamespace

    from wiro_seedream_mcp.tools.common import unknown_to_wiro
    from wiro_seedream_mcp.wiro.errors import CODE_NOT_FOUND, WiroNotFoundError

    scoped = SimpleNamespace(caller=SimpleNamespace(scoped=True))
    local = SimpleNamespace(caller=SimpleNamespace(scoped=False))
    missing = WiroNotFoundError("There is no task yet.", code=CODE_NOT_FOUND)
    stopped = WiroNotFoundError("Task is not in a killable state.", code=CODE_NOT_FOUND)
    assert unknown_to_wiro(scoped, missing, "42")  # type: ignore[arg-type]
    assert unknown_to_wiro(scoped, missing, None, "token")  # type: ignore[arg-type]
    assert not unknown_to_wiro(scoped, stopped, "42")  # type: ignore[arg-type]
    assert not unknown_to_wiro(local, missing, "42")  # type: ignore[arg-type]
    assert not unknown_to_wiro(scoped, missing, None, None)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_get_task_wait_that_ends_first_says_how_long_it_waited(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(timings=Timings(queue=30, prepare=0, generate=1, postprocess=0))
    async with connect(settings_for(server)) as client:
        started = await client.call_tool("generate_image", {"prompt": "later", "wait": False})
        taskid = started.structured_content["taskid"]
        looked = await client.call_tool("get_task", {"taskid": taskid, "wait": 0.2})
    assert "after waiting 0.2 s" in looked.structured_content["next"]
    assert f'taskid "{taskid}"' in looked.structured_content["next"]


async def test_an_unknown_prompt_is_an_invalid_parameter_naming_the_prompts(
    emulator: EmulatorServer, mode: str
) -> None:
    async with connect(settings_for(emulator), mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("no-such-prompt")
    assert raised.value.error.code == INVALID_PARAMS
    assert "'no-such-prompt'" in raised.value.error.message
    assert "seedream_ideas" in raised.value.error.message


async def test_completions_offer_the_callers_tasks_their_images_and_the_ideas(
    emulator: EmulatorServer,
) -> None:
    async with connect(settings_for(emulator)) as client:
        assert client.server_capabilities is not None
        assert client.server_capabilities.completions is not None
        first = structured(await client.call_tool("generate_image", {"prompt": "one"}))["taskid"]
        second = structured(await client.call_tool("generate_image", {"prompt": "two"}))["taskid"]
        task = ResourceTemplateReference(uri="wiro://tasks/{taskid}")
        offered = (await client.complete(task, {"name": "taskid", "value": ""})).completion
        assert offered.values[:2] == [second, first]  # newest first
        narrowed = (await client.complete(task, {"name": "taskid", "value": first[:-1]})).completion
        assert first in narrowed.values and all(v.startswith(first[:-1]) for v in narrowed.values)
        output = ResourceTemplateReference(uri="wiro://tasks/{taskid}/outputs/{name}")
        names = await client.complete(output, {"name": "name", "value": ""}, {"taskid": first})
        assert names.completion.values == ["0.png"]
        ideas = await client.complete(PromptReference(name="seedream_ideas"), {"name": "pick", "value": ""})
        assert ideas.completion.values == ["1", "2", "3", "4", "5"]


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_a_client_that_sets_a_log_level_gets_each_tasks_lines(emulator: EmulatorServer) -> None:
    lines: list[tuple[str, str]] = []

    async def logged(params: LoggingMessageNotificationParams) -> None:
        lines.append((params.level, str(params.data)))

    async with connect(settings_for(emulator), "legacy", logging_callback=logged) as client:
        assert client.server_capabilities is not None and client.server_capabilities.logging is not None
        quiet = structured(await client.call_tool("generate_image", {"prompt": "unheard"}))["taskid"]
        assert lines == []  # nothing unless asked for
        await client.set_logging_level("debug")
        taskid = structured(await client.call_tool("generate_image", {"prompt": "heard"}))["taskid"]
        await client.set_logging_level("info")
        again = structured(await client.call_tool("generate_image", {"prompt": "heard less"}))["taskid"]
    said = [line for _, line in lines]
    assert quiet not in " ".join(said)
    assert f"task {taskid}: started (1024x1024)" in said
    assert any(level == "debug" and line.startswith(f"task {taskid}: ") for level, line in lines)
    assert ("info", f"task {taskid}: done (task_postprocess_end)") in lines
    # At info, the stages (debug) are left out; the start and the end still come.
    assert [level for level, line in lines if line.startswith(f"task {again}:")] == ["info", "info"]
    assert API_KEY not in " ".join(said)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_a_subscriber_hears_of_a_task_no_call_follows_until_it_ends(
    emulator_factory: Callable[..., EmulatorServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriptions, "EVERY", 0.1)
    server = emulator_factory(timings=Timings(queue=0.2, prepare=0.1, generate=0.5, postprocess=0.1))
    heard: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            heard.append(str(message.params.uri))

    async with connect(settings_for(server), "legacy", message_handler=on_message) as client:
        assert client.server_capabilities is not None and client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe is True
        taskid = structured(await client.call_tool("generate_image", {"prompt": "watched", "wait": False}))[
            "taskid"
        ]
        await client.subscribe_resource(f"wiro://tasks/{taskid}")
        # Told as the task moves, and once it ended (no call is following it).
        await until_async(lambda: server.emulator.task_status(taskid) == "task_postprocess_end")
        await until_async(lambda: len(heard) >= 2)
        entries: list[dict[str, object]] = []

        async def look() -> None:
            read = await client.read_resource(f"wiro://tasks/{taskid}")
            [content] = read.contents
            assert isinstance(content, TextResourceContents)
            entries.append(json.loads(content.text))

        await look()
        with anyio.fail_after(15):
            while not entries[-1]["done"]:
                await until_async(lambda: len(heard) > len(entries))
                await look()
    assert set(heard) == {f"wiro://tasks/{taskid}"}
