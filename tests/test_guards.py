"""Smaller behaviours a mutation run found unguarded, each with a test that fails when it breaks."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from wiro_seedream_mcp import follow
from wiro_seedream_mcp.config import ConfigError, Settings
from wiro_seedream_mcp.emulator import EmulatorServer, Timings
from wiro_seedream_mcp.journal import Journal
from wiro_seedream_mcp.media import sniff
from wiro_seedream_mcp.wiro.client import _retry_after
from wiro_seedream_mcp.wiro.errors import WiroAuthError
from wiro_seedream_mcp.wiro.models import Task, TaskStatus
from wiro_seedream_mcp.wiro.seedream import MAX_PROMPT_CHARS
from wiro_seedream_mcp.wiro.signing import NonceSource

from .conftest import connect, settings_for
from .mockwiro import mock_client
from .waiting import until_async


def test_two_nonce_sources_sharing_a_file_never_repeat(tmp_path: Path) -> None:
    shared = tmp_path / "nonce"

    def standing() -> float:
        return 1000.0  # the clock stands still: only the shared file keeps them apart

    first, second = NonceSource(clock=standing, shared=shared), NonceSource(clock=standing, shared=shared)
    assert [first(), second(), first(), second()] == ["1000000", "1000001", "1000002", "1000003"]
    # A file that holds no number starts again from the clock.
    shared.write_bytes(b"junk")
    assert NonceSource(clock=lambda: 2000.0, shared=shared)() == "2000000"


@pytest.mark.parametrize("value", ["32", "2048", "big"])
def test_a_preview_size_outside_its_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"WIRO_PREVIEW .*64.*1024"):
        Settings.from_env({"WIRO_PREVIEW": value})


def test_webp_needs_its_riff_header() -> None:
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image/webp", "webp")
    assert sniff(b"JUNK\x00\x00\x00\x00WEBPVP8 ") is None


def test_retry_after_as_a_date_counts_from_now_without_a_date_header() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    response = httpx.Response(429, headers={"retry-after": format_datetime(when, usegmt=True)})
    waited = _retry_after(response)
    assert waited is not None and 25 <= waited <= 31


@pytest.mark.anyio
async def test_a_saved_file_is_named_by_its_prompt_even_without_a_journal(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the journal cannot be kept here: the prompt comes from Wiro's record
    settings = dataclasses.replace(settings_for(emulator), output_dir=tmp_path / "images", state_dir=blocked)
    async with connect(settings) as client:
        made = await client.call_tool("generate_image", {"prompt": "A heron at dusk"})
    [output] = made.structured_content["outputs"]
    assert Path(output["path"]).name.endswith("-a-heron-at-dusk.png"), output["path"]


@pytest.mark.anyio
async def test_the_journal_follows_a_task_while_the_call_waits(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    """A crash mid-wait leaves the journal at the task's last known stage, not at "queued"."""
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=60, postprocess=1))
    settings = dataclasses.replace(settings_for(server), state_dir=tmp_path)
    async with connect(settings) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "generate_image", {"prompt": "slow"})
        await until_async(
            lambda: any(
                server.emulator.task_status(t) == TaskStatus.START for t in list(server.emulator.tasks)
            )
        )

        async def recorded() -> Any:
            tasks = (await client.call_tool("list_tasks", {})).structured_content["tasks"]
            return tasks[0]["status"] if tasks else None  # Run's answer may still be on its way

        with anyio.fail_after(15):
            while await recorded() != TaskStatus.START:  # noqa: ASYNC110 - the journal has no event to await
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_journal_row_reads_back_cut_to_the_sizes_the_server_writes(tmp_path: Path) -> None:
    """A row written by anything else (an older version, a hand edit) cannot blow up an answer."""
    journal = Journal(tmp_path)
    await journal.accepted("41", "t", {"prompt": "p" * (MAX_PROMPT_CHARS * 3), "seed": 7})
    entry = await journal.get("41")
    assert entry is not None
    assert entry.parameters == {"prompt": "p" * MAX_PROMPT_CHARS, "seed": 7}
    journal.close()


@pytest.mark.anyio
@pytest.mark.parametrize("socket", [True, False])
async def test_a_live_socket_slows_the_polling_to_the_safety_net(
    emulator_factory: Callable[..., EmulatorServer], monkeypatch: pytest.MonkeyPatch, socket: bool
) -> None:
    """Detail at the safety net's pace (5 s) while the socket pushes the news, instead of the
    polling's (every second): both a fifth of theirs here, so the job is a fifth as long."""
    monkeypatch.setattr(follow, "SAFETY_NET_INTERVAL", 1.0)
    monkeypatch.setattr(follow, "POLL_SCHEDULE", ((30.0, 0.2),))
    server = emulator_factory(timings=Timings(queue=0, prepare=0, generate=1.6, postprocess=0.1))
    async with connect(settings_for(server, wait_timeout=30, socket=socket)) as client:
        made = await client.call_tool("generate_image", {"prompt": "patient"})
    assert made.structured_content["succeeded"] is True
    details = server.emulator.count("/Task/Detail")
    # Over the 1.6 s the polling makes eight or nine; the safety net one or two, and the
    # socket's news brings the image without another.
    assert details <= 4 if socket else details >= 6, details


@pytest.mark.anyio
@pytest.mark.parametrize("status", [200, 401])
async def test_a_refused_key_keeps_wiros_error_code(status: int) -> None:
    """Wiro's code tells a refused key (0) from a bearer-token or sign-in problem (98, 99)."""

    def refuse(request: httpx.Request) -> httpx.Response:
        body = {"result": False, "errors": [{"code": 98, "message": "Project authorization is not valid."}]}
        return httpx.Response(status, json=body)

    with pytest.raises(WiroAuthError) as refused:
        await mock_client(refuse).detail(taskid="1")
    assert refused.value.code == 98
    assert refused.value.message == "Project authorization is not valid."


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"status": "task_error"}, "Wiro reported task_error without details"),
        ({"status": "task_postprocess_end", "pexit": "137"}, "the task ended with exit code 137"),
        ({"status": "task_postprocess_end", "pexit": ""}, "the task ended with exit code none"),
        ({"status": "task_error", "debugerror": " out of\n memory "}, "out of memory"),
    ],
)
def test_a_failure_without_wiros_words_is_described_plainly(record: dict[str, str], reason: str) -> None:
    assert Task.model_validate({"id": "5", **record}).failure_reason() == reason


def test_the_shared_nonce_file_is_never_reached_through_a_link_or_a_shared_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another user's link where the counter goes, or a folder others can write to, is not
    used: the nonces stay unique in this process, the target file is untouched, and it is logged."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"not yours")
    linked = tmp_path / "linked"
    linked.mkdir(mode=0o700)
    (linked / "nonce").symlink_to(victim)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    for counter in (linked / "nonce", shared / "nonce"):
        source = NonceSource(clock=lambda: 1000.0, shared=counter)
        assert [source(), source()] == ["1000000", "1000001"]
    assert victim.read_bytes() == b"not yours"
    assert not (shared / "nonce").exists()
    assert caplog.text.count("nonces are unique in this process only") == 2


def test_the_shared_nonce_folder_is_made_owner_only(tmp_path: Path) -> None:
    counter = tmp_path / "wiro-seedream-0" / "nonce"
    assert NonceSource(clock=lambda: 1000.0, shared=counter)() == "1000000"
    assert stat.S_IMODE(counter.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(counter.stat().st_mode) == 0o600
