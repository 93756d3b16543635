"""``wiro-seedream-mcp doctor``: is this server set up right, and does Wiro accept its keys?

It prints the configuration with secrets masked, checks that the API answers, and, with
credentials, makes one harmless signed call (``Task/Detail`` of a task that cannot exist) to
tell accepted keys from a refused signature or a project that needs a secret. Exit codes:

* 0: ready;
* 1: no credentials (the server starts, but its tools will ask for them);
* 2: a setting is invalid;
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

from .config import ConfigError, Settings
from .console import say
from .journal import inspect
from .state import wiro_client
from .wiro.errors import WiroAuthError, WiroConnectionError, WiroError, WiroNotFoundError

READY, NO_CREDENTIALS, BAD_CONFIG, UNREACHABLE, REFUSED = 0, 1, 2, 3, 4

# A task id no project has: Detail of it is a signed call that changes nothing and costs nothing.
PROBE_TASK = "0"


def _masked(name: str) -> str:
    value = os.environ.get(name, "")
    if not value.strip():
        return "(not set)"
    if value.strip().startswith("${"):
        return "(left blank in the host: counts as not set)"
    return f"set ({len(value.strip())} characters, not shown)"


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
    for note in settings.notes:
        say(f"  note: {note}")
    say()
    say("Checks:")
    for folder, what in ((settings.output_dir, "output folder"), (settings.state_dir, "journal folder")):
        if folder is not None:
            say(f"  {what}: {_writable(folder)}")
    if settings.state_dir is not None:
        say(f"  task journal: {inspect(settings.state_dir)}")
    return anyio.run(_check_wiro, settings)


def _writable(folder: Path) -> str:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"NOT writable ({exc.strerror or exc})"
    return "writable"


async def _check_wiro(settings: Settings) -> int:
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=10.0)) as http:
        try:
            answer = await http.post(f"{settings.base_url}/Task/Detail", json={"taskid": PROBE_TASK})
        except httpx.HTTPError as exc:
            say(f"  Wiro API: cannot be reached at {settings.base_url} ({type(exc).__name__}: {exc})")
            say("  Check the network, a proxy, or WIRO_API_BASE_URL.")
            return UNREACHABLE
        say(f"  Wiro API: answers at {settings.base_url} (HTTP {answer.status_code} without credentials)")
        say(f"  task socket: {await _socket_check(http, settings.socket_url)}")

        client = wiro_client(http, settings)
        if client is None:
            say()
            say(
                "Not ready: WIRO_API_KEY is not set. The server starts and lists its tools, but every "
                "call answers with an error until the key (and, for a signature project, "
                "WIRO_API_SECRET) is set where the host starts the server."
            )
            return NO_CREDENTIALS

        mode = "signed request (key + nonce + signature)" if settings.signed else "key-only request"
        try:
            await client.detail(taskid=PROBE_TASK)
        except WiroNotFoundError:
            pass  # the expected answer: the keys were accepted and the task does not exist
        except WiroAuthError as exc:
            say(f"  credentials: REFUSED on a {mode}: {exc.message}")
            say()
            if "signature" in exc.message.lower() and not settings.signed:
                say(
                    "Not ready: this Wiro project uses signature authentication. Set WIRO_API_SECRET "
                    "to the project's API secret."
                )
            else:
                say(
                    "Not ready: Wiro does not accept this key (and secret). Copy both again from the "
                    "Wiro dashboard (Projects); a key-only project needs WIRO_API_SECRET left unset."
                )
            return REFUSED
        except WiroConnectionError as exc:
            say(f"  credentials: could not be checked: {exc}")
            return UNREACHABLE
        except WiroError as exc:
            say(f"  credentials: Wiro answered the check with an error: {exc}")
            return REFUSED
        say(f"  credentials: accepted ({mode})")
    say()
    say("Ready: the server can start tasks on Wiro.")
    return READY


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
