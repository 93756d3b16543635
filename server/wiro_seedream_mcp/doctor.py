"""``wiro-seedream-mcp doctor``: is this server set up right, and does Wiro accept its keys?

It prints the configuration with secrets masked, checks that the API answers, and, with
credentials, makes one harmless signed call (``Task/Detail`` of a task that cannot exist) to
tell accepted keys from a refused signature or a project that needs a secret. Exit codes:

* 0: ready;
* 1: no credentials (the server starts, but its tools will ask for them);

When several things are wrong, each is named and the exit code is the lowest of theirs.
* 2: a setting is invalid, or a folder it names cannot be written;
* 3: the Wiro API cannot be reached;
* 4: Wiro refused the credentials.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import anyio
import httpx2 as httpx

from .config import ConfigError, Settings, wiro_client
from .console import say
from .journal import inspect
from .pricing import from_price_list
from .wiro.client import WiroClient
from .wiro.errors import WiroAuthError, WiroConnectionError, WiroError, WiroNotFoundError
from .wiro.seedream import DEFAULT_PROMPT, SeedreamInputs

READY, NO_CREDENTIALS, BAD_CONFIG, UNREACHABLE, REFUSED = 0, 1, 2, 3, 4

# A task id no project has: Detail of it is a signed call that changes nothing and costs nothing.
PROBE_TASK = "0"


def _masked(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        return "(not set)"
    if value.startswith("${"):
        return "(left blank in the host: counts as not set)"
    return f"set ({len(value)} character{'s' if len(value) != 1 else ''}, not shown)"


# Claude Desktop gives up on a call after about 60 s; a call answers within its wait + 8 s.
CLAUDE_DESKTOP_WAIT = 50


def run_doctor() -> int:
    say("wiro-seedream-mcp doctor")
    say()
    say("Configuration:")
    for name in ("WIRO_API_KEY", "WIRO_API_SECRET"):
        say(f"  {name:<18} {_masked(name)}")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        say()
        say(f"Invalid setting: {exc}")
        return BAD_CONFIG
    say(f"  {'WIRO_API_BASE_URL':<18} {settings.base_url}")
    say(f"  {'WIRO_SOCKET_URL':<18} {settings.socket_url or 'off (tasks are followed by polling)'}")
    say(f"  {'WIRO_WAIT_TIMEOUT':<18} {settings.wait_timeout:g} s")
    say(f"  {'WIRO_OUTPUT_DIR':<18} {settings.output_dir or '(not set: images are not saved)'}")
    say(f"  {'WIRO_PREVIEW':<18} {f'{settings.preview_size} px' if settings.preview_size else 'off'}")
    say(f"  {'WIRO_STATE_DIR':<18} {settings.state_dir}")
    reuse = f"{settings.reuse_window:g} s" if settings.reuse_window else "off (every call is a new task)"
    say(f"  {'WIRO_REUSE_WINDOW':<18} {reuse}")
    for name, amount, unit in (
        ("WIRO_BUDGET_USD", settings.budget_usd, " a day"),
        ("WIRO_MAX_TASK_USD", settings.max_task_usd, " a task"),
    ):
        say(f"  {name:<18} {f'${amount:g}{unit}' if amount is not None else '(not set: no limit)'}")
    threshold = settings.confirm_above
    asks = "never" if threshold is None else "always" if threshold == 0 else f"above ${threshold:g}"
    say(f"  {'WIRO_CONFIRM':<18} {asks}")
    for note in settings.notes:
        say(f"  note: {note}")
    if settings.wait_timeout > CLAUDE_DESKTOP_WAIT:
        say(
            f"  note: Claude Desktop gives up on a call after about 60 s, and a call can take "
            f"WIRO_WAIT_TIMEOUT + 8 s: keep WIRO_WAIT_TIMEOUT at {CLAUDE_DESKTOP_WAIT} or below for it"
        )
    say()
    say("Checks:")
    problems: list[tuple[int, str]] = []
    if not settings.has_credentials:
        say("  credentials: WIRO_API_KEY is not set")
        problems.append(
            (
                NO_CREDENTIALS,
                "WIRO_API_KEY is not set. The server starts and lists its tools, but every call "
                "answers with an error until the key (and, for a signature project, "
                "WIRO_API_SECRET) is set where the host starts the server. Both are on the Wiro "
                "dashboard, under Projects.",
            )
        )
    usable: dict[str, bool] = {}
    for folder, what, name in (
        (settings.output_dir, "output folder", "WIRO_OUTPUT_DIR"),
        (settings.state_dir, "journal folder", "WIRO_STATE_DIR"),
    ):
        if folder is None:
            continue
        verdict, usable[name] = _writable(folder)
        say(f"  {what}: {verdict}")
        if not usable[name]:
            problems.append(
                (BAD_CONFIG, f"{name} ({folder}) cannot be written: choose a folder you can write.")
            )
    if settings.state_dir is not None and usable.get("WIRO_STATE_DIR"):
        say(f"  task journal: {inspect(settings.state_dir)}")
    problems += anyio.run(_check_wiro, settings)
    say()
    if problems:
        for problem in dict.fromkeys(problem for _, problem in problems):
            say(f"Not ready: {problem}")
        return min(code for code, _ in problems)
    say("Ready: the server can start tasks on Wiro.")
    return READY


def _writable(folder: Path) -> tuple[str, bool]:
    """Whether the folder can be written, without creating it or anything in it for good."""
    if folder.is_dir():
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            return f"{folder} is NOT writable ({exc.strerror or exc})", False
        return f"{folder} is writable", True
    parent = next((p for p in folder.parents if p.exists()), None)
    if folder.exists() or parent is None or not parent.is_dir():
        return f"{folder} is NOT a folder", False
    try:
        # Make (and remove) a folder where the first one would go: only that shows /proc, a
        # read-only mount or a full disk refusing it.
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".wiro-doctor-"))
    except OSError as exc:
        why = exc.strerror or str(exc)
        return f"{folder} does not exist, and it cannot be made in {parent} ({why})", False
    return f"{folder} does not exist yet; it is created when first needed ({parent} is writable)", True


async def _check_wiro(settings: Settings) -> list[tuple[int, str]]:
    """What stands between this setup and a task on Wiro, as (exit code, what to do)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=10.0)) as http:
        try:
            answer = await http.post(f"{settings.base_url}/Task/Detail", json={"taskid": PROBE_TASK})
        except httpx.HTTPError as exc:
            say(f"  Wiro API: cannot be reached at {settings.base_url} ({type(exc).__name__}: {exc})")
            return [
                (
                    UNREACHABLE,
                    "the Wiro API cannot be reached: check the network, a proxy, or WIRO_API_BASE_URL.",
                )
            ]
        say(f"  Wiro API: answers at {settings.base_url} (HTTP {answer.status_code} without credentials)")
        say(f"  task socket: {await _socket_check(http, settings.socket_url)}")

        client = wiro_client(http, settings)
        if client is None:
            return []  # the missing key is already reported

        return await _probe(client, settings)


async def _probe(client: WiroClient, settings: Settings) -> list[tuple[int, str]]:
    """One signed Detail of a task that cannot exist: accepted keys answer "no such task"."""
    mode = "signed request (key, nonce and signature)" if settings.signed else "key-only request"
    try:
        await client.detail(taskid=PROBE_TASK)
    except WiroNotFoundError:
        say(f"  credentials: accepted on a {mode}")
        say(f"  price: {await _price(client)}")
        return []
    except WiroAuthError as exc:
        say(f"  credentials: REFUSED on a {mode}: {exc.message}")
        if "signature" in exc.message.lower() and not settings.signed:
            advice = (
                "this Wiro project uses signature authentication. Set WIRO_API_SECRET to the "
                "project's API secret."
            )
        else:
            advice = (
                "Wiro does not accept this key (and secret). Copy both again from the Wiro "
                "dashboard (Projects); a key-only project needs WIRO_API_SECRET left unset."
            )
        return [(REFUSED, advice)]
    except WiroConnectionError as exc:
        say(f"  credentials: could not be checked: {exc}")
        return [(UNREACHABLE, "the credentials could not be checked; try again.")]
    except WiroError as exc:
        say(f"  credentials: Wiro answered the check with an error: {exc}")
        return [(REFUSED, "Wiro answered the credentials check with an error (above).")]
    say(f"  credentials: Wiro answered the check of task {PROBE_TASK} as if it existed; assuming accepted")
    return []


async def _price(client: WiroClient) -> str:
    """The model's price as Wiro's catalogue gives it, for a default 1024x1024 image."""
    try:
        tool = await client.tool_detail()
    except WiroError as exc:
        return f"Wiro did not give it ({exc}); estimates will come from past tasks"
    found = from_price_list(tool, SeedreamInputs(prompt=DEFAULT_PROMPT))
    if found is None or found.usd is None:
        return "Wiro's catalogue gives none for this model; estimates will come from past tasks"
    return f"about ${found.usd:.4g} for a 1024x1024 image ({found.basis})"


async def _socket_check(http: httpx.AsyncClient, url: str | None) -> str:
    """Whether the task socket answers a subscription (for a task that does not exist)."""
    if url is None:
        return "off (WIRO_SOCKET_URL=off): tasks are followed by polling Task/Detail"
    from httpx2.websockets import AsyncWebSocketClient, HTTPXWSException, WebSocketDisconnect

    problem: BaseException | None = None
    try:
        with anyio.fail_after(10):
            async with AsyncWebSocketClient(http, keepalive_ping_interval_seconds=None).connect(url) as ws:
                await ws.send_json({"type": "task_info", "tasktoken": "doctor-check"})
                # No news for a task that does not exist is a fine answer too.
                with contextlib.suppress(TimeoutError, WebSocketDisconnect):
                    await ws.receive_text(timeout=3)
    except* (HTTPXWSException, httpx.HTTPError, OSError, TimeoutError) as group:
        problem = group.exceptions[0]
    if problem is not None:
        return (
            f"not reachable at {url} ({type(problem).__name__}): tasks will be followed by polling, "
            "which is slower to notice a finished image"
        )
    return f"answers at {url}"
