"""The MCP App in a real browser: headless Chromium, a host page with the ext-apps AppBridge, the
view in a sandboxed iframe under the CSP its resource declares, and its tool calls relayed to this
server against the emulator."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wiro_seedream_mcp.emulator import FAIL_MARKER, EmulatorServer, Timings
from wiro_seedream_mcp.ui import WIRO_CDN
from wiro_seedream_mcp.wiro.seedream import RUN_PATH

from ..conftest import settings_for
from .conftest import Hosts, ViewHost, artefacts

pytestmark = [pytest.mark.anyio, pytest.mark.child_process]

RUNNING = Timings(queue=0, prepare=0, generate=60, postprocess=1)
NAME_OF_FOCUSED = "(e => e.getAttribute('aria-label') || e.textContent.trim())(document.activeElement)"
# How long a browser step may take before the test fails (a bound, not a wait).
STEP_MS = 20_000


async def loaded(host: ViewHost, width: int, *, not_src: str = "") -> str:
    """Wait until the view's image has loaded at ``width`` pixels; its src."""
    await host.view.wait_for_function(
        "([width, old]) => { const i = document.getElementById('image');"
        " return i && !i.hidden && i.complete && i.naturalWidth === width && i.currentSrc !== old; }",
        arg=[width, not_src],
        timeout=STEP_MS,
    )
    src: str = await host.view.evaluate("document.getElementById('image').currentSrc")
    return src


async def text(host: ViewHost, element: str) -> str:
    found: str = await host.view.locator(f"#{element}").inner_text()
    return found


def runs(server: EmulatorServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.emulator.requests if r.path.endswith(RUN_PATH)]


async def test_the_viewer_shows_the_full_image_with_its_facts(
    emulator: EmulatorServer, hosts: Hosts, tmp_path: Path
) -> None:
    client = await hosts.connect(settings_for(emulator))
    host = await hosts.open(client, "generate_image", {"prompt": "a lighthouse at dusk", "seed": 42})
    src = await loaded(host, 1024)
    assert await host.natural_size() == (1024, 1024)
    assert src.startswith(emulator.origin)
    [task] = emulator.emulator.tasks.values()
    assert await text(host, "prompt") == "a lighthouse at dusk"
    assert await text(host, "seed") == "42"
    assert await text(host, "size") == "1024x1024"
    assert await text(host, "taskid") == task.id
    assert await text(host, "state") == "done"
    assert (await text(host, "cost")).startswith("$0.")
    assert await host.view.locator("#stop").is_hidden()
    assert host.problems == []
    await host.page.locator("#view").screenshot(path=artefacts(tmp_path) / "viewer.png")

    await host.view.locator("#open").click()
    await host.view.locator("#download").click()
    log = await host.log()
    opened = next(item for item in log if item["kind"] == "open-link")
    download = next(item for item in log if item["kind"] == "download")
    assert opened["url"] == src
    assert download["contents"][0]["type"] == "resource_link"
    assert download["contents"][0]["uri"] == src
    assert download["contents"][0]["name"] == f"seedream-{task.id}-0.png"


async def test_dark_and_360_px_wide_with_labelled_keyboard_buttons(
    emulator: EmulatorServer, hosts: Hosts, tmp_path: Path
) -> None:
    client = await hosts.connect(settings_for(emulator))
    host = await hosts.open(
        client, "generate_image", {"prompt": "neon rain", "size": "720x1280"}, theme="dark", width=360
    )
    await loaded(host, 720)
    view = host.view
    assert await view.evaluate("document.documentElement.dataset.theme") == "dark"
    background = await view.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(part) for part in background.removeprefix("rgb(").rstrip(")").split(",")[:3])
    assert red + green + blue < 150, background
    # Nothing sticks out sideways at 360 px.
    assert await view.evaluate("document.documentElement.scrollWidth") <= 360
    # Every visible control has a name and is reached with Tab, in order.
    names = await view.evaluate(
        "() => [...document.querySelectorAll('#viewer button, #viewer select')]"
        ".filter(e => !e.hidden && e.offsetParent !== null && !e.disabled)"
        ".map(e => e.getAttribute('aria-label') || e.textContent.trim())"
    )
    assert names == ["Another seed", "Other size", "Make at this size", "Open", "Download"]
    reached = []
    await view.locator("body").focus()
    for _ in names:
        await host.page.keyboard.press("Tab")
        reached.append(await view.evaluate(NAME_OF_FOCUSED))
    assert reached == names
    assert host.problems == []
    await host.page.locator("#view").screenshot(path=artefacts(tmp_path) / "viewer-dark-360.png")


async def test_another_seed_runs_again_and_shows_the_new_image(
    emulator: EmulatorServer, hosts: Hosts
) -> None:
    client = await hosts.connect(settings_for(emulator))
    host = await hosts.open(client, "generate_image", {"prompt": "a fox in snow", "seed": 5})
    first = await loaded(host, 1024)
    await host.view.locator("#another").click()
    second = await loaded(host, 1024, not_src=first)
    made = runs(emulator)
    assert len(made) == 2
    assert made[0]["seed"] == 5
    assert made[1]["seed"] != 5
    assert made[1]["prompt"] == "a fox in snow"
    assert await text(host, "seed") == str(made[1]["seed"])
    assert second != first
    assert next(call["name"] for call in host.relayed) == "app_task"
    assert any(call["name"] == "generate_image" for call in host.relayed)
    assert host.problems == []


async def test_another_size_runs_at_that_size(emulator: EmulatorServer, hosts: Hosts) -> None:
    client = await hosts.connect(settings_for(emulator))
    # The view's first look-up of the task is held until the person has picked a size, so the
    # update it brings comes after the choice: the choice must survive it.
    host = await hosts.open(client, "generate_image", {"prompt": "a wide valley"}, hold=("app_task",))
    first = await loaded(host, 1024)
    await host.view.locator("#sizes").select_option("1512x648")
    drawn = int(await host.view.evaluate("document.body.dataset.revision"))
    host.held["app_task"].set()
    await host.view.wait_for_function(
        "(drawn) => Number(document.body.dataset.revision) > drawn", arg=drawn, timeout=STEP_MS
    )
    assert await host.view.locator("#sizes").input_value() == "1512x648"
    await host.view.locator("#resize").click()
    await loaded(host, 1512, not_src=first)
    assert await host.natural_size() == (1512, 648)
    assert [run["size"] for run in runs(emulator)] == ["1024x1024", "1512x648"]
    assert host.problems == []


async def test_a_budget_refusal_shows_in_the_view_and_pays_nothing(
    emulator: EmulatorServer, hosts: Hosts, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings_for(emulator), state_dir=tmp_path, budget_usd=0.05)
    client = await hosts.connect(settings)
    host = await hosts.open(client, "generate_image", {"prompt": "one lantern"})
    first = await loaded(host, 1024)
    await host.view.locator("#another").click()
    note = host.view.locator("#note")
    await host.view.wait_for_function(
        "() => document.getElementById('note').textContent.includes('WIRO_BUDGET_USD')", timeout=STEP_MS
    )
    assert "nothing was started" in await note.inner_text()
    assert len(runs(emulator)) == 1
    # The image already paid for stays on show, and the buttons work again.
    assert await host.view.evaluate("document.getElementById('image').currentSrc") == first
    assert await host.view.locator("#another").is_enabled()
    assert host.problems == []


async def test_stop_kills_a_running_task(
    emulator_factory: Callable[..., EmulatorServer], hosts: Hosts
) -> None:
    server = emulator_factory(timings=RUNNING)
    client = await hosts.connect(settings_for(server, wait_timeout=0))
    host = await hosts.open(client, "generate_image", {"prompt": "slow clouds", "wait": False})
    stop = host.view.locator("#stop")
    await stop.wait_for(state="visible", timeout=STEP_MS)
    assert await stop.get_attribute("aria-label") == "Stop the running task"
    await stop.click()
    await host.view.wait_for_function(
        "() => document.getElementById('state').textContent !== 'generating'"
        " && document.getElementById('stop').hidden",
        timeout=STEP_MS,
    )
    [task] = server.emulator.tasks.values()
    assert task.stopped == "kill"
    assert "kill_task" in [call["name"] for call in host.relayed]
    assert host.problems == []


async def test_get_task_opens_the_viewer_with_the_tasks_inputs(
    emulator: EmulatorServer, hosts: Hosts
) -> None:
    client = await hosts.connect(settings_for(emulator))
    made = await client.call_tool("generate_image", {"prompt": "a quiet pier", "size": "1248x832", "seed": 9})
    assert isinstance(made.structured_content, dict)
    host = await hosts.open(client, "get_task", {"taskid": made.structured_content["taskid"]})
    await loaded(host, 1248)
    # get_task's result has no inputs: the viewer asks the server for them.
    await host.view.wait_for_function(
        "() => document.getElementById('prompt').textContent !== ''", timeout=STEP_MS
    )
    assert await text(host, "prompt") == "a quiet pier"
    assert await text(host, "seed") == "9"
    assert await text(host, "size") == "1248x832"
    assert host.problems == []


async def test_a_host_without_tool_calls_is_asked_through_the_conversation(
    emulator: EmulatorServer, hosts: Hosts
) -> None:
    client = await hosts.connect(settings_for(emulator))
    only_messages: dict[str, Any] = {"openLinks": {}, "message": {"text": {}}}
    host = await hosts.open(
        client, "generate_image", {"prompt": "a moth", "seed": 3}, capabilities=only_messages
    )
    await loaded(host, 1024)
    await host.view.locator("#another").click()
    await host.page.wait_for_function(
        "() => window.hostLog.some(item => item.kind === 'message')", timeout=STEP_MS
    )
    [message] = [item for item in await host.log() if item["kind"] == "message"]
    words = message["content"][0]["text"]
    assert words.startswith("Generate this image again with generate_image, seed ")
    assert words.endswith("size 1024x1024: a moth")
    assert host.relayed == []  # the view made no tool call of its own
    assert len(runs(emulator)) == 1
    assert host.problems == []


async def test_a_failed_task_shows_wiros_message(emulator: EmulatorServer, hosts: Hosts) -> None:
    client = await hosts.connect(settings_for(emulator))
    host = await hosts.open(client, "generate_image", {"prompt": f"broken {FAIL_MARKER}"})
    error = host.view.locator("#error")
    await error.wait_for(state="visible", timeout=STEP_MS)
    assert "exited with code 1" in await error.inner_text()
    assert await text(host, "state") == "failed"
    assert host.problems == []


async def test_an_image_the_host_will_not_load_comes_as_bytes(emulator: EmulatorServer, hosts: Hosts) -> None:
    client = await hosts.connect(settings_for(emulator))
    # A host stricter than declared (allowed): only Wiro's CDN, so the emulator's link is blocked.
    host = await hosts.open(
        client, "generate_image", {"prompt": "a blocked link"}, csp={"resourceDomains": [WIRO_CDN]}
    )
    src = await loaded(host, 1024)
    assert src.startswith("data:image/png;base64,")
    assert "app_image" in [call["name"] for call in host.relayed]
    # The one problem is the blocked link itself.
    assert host.problems, "the link should have been refused by the CSP"
    assert all(
        "Content Security Policy" in problem and emulator.origin in problem for problem in host.problems
    )


async def test_the_gallery_shows_recent_tasks_and_the_days_spend(
    emulator: EmulatorServer, hosts: Hosts, tmp_path: Path
) -> None:
    client = await hosts.connect(settings_for(emulator))
    prompts = ["a red kite over dunes", "tea on a windowsill", "a tram at night"]
    sizes = ["1024x1024", "1152x864", "864x1152"]
    charged = []
    for prompt, size in zip(prompts, sizes, strict=True):
        done = await client.call_tool("generate_image", {"prompt": prompt, "size": size})
        assert isinstance(done.structured_content, dict)
        charged.append(done.structured_content["totalcost"])
    host = await hosts.open(client, "list_tasks", {})
    cards = host.view.locator(".card")
    await host.view.wait_for_function(
        "() => document.querySelectorAll('.card img').length === 3"
        " && [...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)"
        " && document.getElementById('spend').textContent.includes('spent today')",
        timeout=STEP_MS,
    )
    assert await cards.count() == 3
    assert [await card.locator(".what").inner_text() for card in await cards.all()] == prompts[::-1]
    costs = [await card.locator(".meta span").nth(1).inner_text() for card in await cards.all()]
    assert all(cost.startswith("$0.") for cost in costs)
    total = sum(charged)
    assert await text(host, "spend") == f"${total:.2f} spent today"
    assert host.problems == []
    await host.page.locator("#view").screenshot(path=artefacts(tmp_path) / "gallery.png")

    await cards.nth(1).click()
    await loaded(host, 1152)
    assert await text(host, "prompt") == "tea on a windowsill"
    assert await host.view.locator("#back").is_visible()
    await host.view.locator("#back").click()
    await host.view.locator("#gallery").wait_for(state="visible", timeout=STEP_MS)


async def test_the_viewer_follows_a_task_by_the_updates_the_host_passes_on(
    emulator_factory: Callable[..., EmulatorServer], hosts: Hosts
) -> None:
    moment = [time.monotonic()]
    server = emulator_factory(timings=RUNNING, clock=lambda: moment[0])
    client = await hosts.connect(settings_for(server, wait_timeout=0))
    host = await hosts.open(client, "generate_image", {"prompt": "told, not asked", "wait": False})
    await host.view.locator("#stop").wait_for(state="visible", timeout=STEP_MS)
    [task] = server.emulator.tasks.values()
    relay = "uri => window.bridge.notification({method: 'notifications/resources/updated', params: {uri}})"
    await host.page.evaluate(relay, f"wiro://tasks/{task.id}")
    await host.view.wait_for_function("() => document.body.dataset.follow === 'updates'", timeout=STEP_MS)
    moment[0] += 120  # the task has ended on Wiro's side
    asked = [call["name"] for call in host.relayed].count("app_task")
    await host.page.evaluate(relay, f"wiro://tasks/{task.id}")
    await host.view.wait_for_function(
        "() => document.getElementById('state').textContent === 'done'", timeout=STEP_MS
    )
    # The update, not a poll, brought the end: one look, asked for by the update.
    assert [call["name"] for call in host.relayed].count("app_task") == asked + 1
    assert host.problems == []


SHEET_LOADED = (
    "n => document.querySelectorAll('#sheet-cards img').length === n"
    " && [...document.querySelectorAll('#sheet-cards img')].every(i => i.complete && i.naturalWidth > 0)"
)


async def test_a_set_is_a_contact_sheet_each_image_opens_and_more_like_this_starts_another(
    emulator: EmulatorServer, hosts: Hosts, tmp_path: Path
) -> None:
    client = await hosts.connect(settings_for(emulator))
    host = await hosts.open(client, "generate_image", {"prompt": "four lighthouses", "seed": 40, "count": 4})
    await host.view.locator("#sheet").wait_for(state="visible", timeout=STEP_MS)
    await host.view.wait_for_function(SHEET_LOADED, arg=4, timeout=STEP_MS)
    cards = host.view.locator("#sheet-cards .card")
    labels = [await card.locator(".meta span").first.inner_text() for card in await cards.all()]
    assert labels == [f"{n} \u00b7 seed {seed}" for n, seed in [(1, 40), (2, 41), (3, 42), (4, 43)]]
    assert await text(host, "sheet-state") == "4 of 4 made"
    assert (await text(host, "sheet-cost")).endswith(" in all")
    assert await text(host, "sheet-prompt") == "four lighthouses"
    assert host.problems == []
    await host.page.locator("#view").screenshot(path=artefacts(tmp_path) / "contact-sheet.png")

    # One picked: full size, with its own seed and the actions of one image; back to the set.
    await cards.nth(1).click()
    await loaded(host, 1024)
    assert await text(host, "seed") == "41"
    assert await host.view.locator("#another").is_enabled()
    assert await text(host, "back") == "\u2190 Set"
    await host.view.locator("#back").click()
    await host.view.locator("#sheet").wait_for(state="visible", timeout=STEP_MS)

    # More like this: another set of four, new seeds, paid once each.
    first_ids = set(emulator.emulator.tasks)
    await host.view.locator("#more").click()
    await host.view.wait_for_function(
        "ids => [...document.querySelectorAll('#sheet-cards .card')]"
        ".filter(c => !ids.includes(c.dataset.taskid)).length === 4",
        arg=sorted(first_ids),
        timeout=STEP_MS,
    )
    await host.view.wait_for_function(SHEET_LOADED, arg=4, timeout=STEP_MS)
    more = [call for call in host.relayed if call["name"] == "generate_image"]
    assert len(more) == 1
    assert more[0]["arguments"]["count"] == 4 and more[0]["arguments"]["new_task"] is True
    made = runs(emulator)
    assert len(made) == 8
    assert {m["seed"] for m in made[4:]}.isdisjoint({40, 41, 42, 43})
    assert host.problems == []


async def test_the_gallery_shows_a_set_as_one_card(
    emulator: EmulatorServer, hosts: Hosts, tmp_path: Path
) -> None:
    client = await hosts.connect(settings_for(emulator))
    await client.call_tool("generate_image", {"prompt": "a single pear"})
    await client.call_tool("generate_image", {"prompt": "three plums", "seed": 7, "count": 3})
    host = await hosts.open(client, "list_tasks", {})
    group = host.view.locator(".card[data-set]")
    await group.wait_for(state="visible", timeout=STEP_MS)
    await host.view.wait_for_function(
        "() => [...document.querySelectorAll('#cards img')].length === 4"
        " && [...document.querySelectorAll('#cards img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=STEP_MS,
    )
    assert await host.view.locator("#cards .card").count() == 2  # the set is one card
    assert await group.locator(".count").inner_text() == "3 images"
    assert await group.locator(".what").inner_text() == "three plums"
    assert await group.locator(".meta span").first.inner_text() == "3 of 3 made"
    assert host.problems == []
    await host.page.locator("#view").screenshot(path=artefacts(tmp_path) / "gallery-set.png")
    await group.click()
    await host.view.locator("#sheet").wait_for(state="visible", timeout=STEP_MS)
    await host.view.wait_for_function(SHEET_LOADED, arg=3, timeout=STEP_MS)
    assert await host.view.locator("#sheet-back").is_visible()
    await host.view.locator("#sheet-back").click()
    await host.view.locator("#gallery").wait_for(state="visible", timeout=STEP_MS)
