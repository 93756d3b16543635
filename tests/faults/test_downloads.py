"""Row 10 (and 11), and a network or disk that fails mid-delivery.

Images are fetched only from Wiro's CDN or the configured API's origin, checked again on every
redirect hop; a file's declared size is checked before it is decoded; only what decodes is
kept; a Detail about another task is never shown as this one; files get the umask's mode. A
delivery that fails leaves the call successful, with the image's URL in a warning.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.emulator import EmulatorServer
from wiro_seedream_mcp.emulator.pictures import declared_png, gradient_png
from wiro_seedream_mcp.media import MediaError, Sources, check_image, download

from ..conftest import connect, settings_for
from .conftest import call, make_read_only

pytestmark = pytest.mark.anyio


def saving(emulator: EmulatorServer, folder: Path) -> Settings:
    return Settings(**{**settings_for(emulator).__dict__, "output_dir": folder})


@pytest.fixture
def bystander() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback listener that records every connection made to it (none may be)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: list[bytes] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(conn.recv(1024))
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/steal", seen
    listener.close()


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a request went out to {request.url}")


@pytest.mark.parametrize(
    "url",
    [
        "https://images.example.net/0.png",
        "http://cdn1.wiro.ai/0.png",  # Wiro's CDN, but not over https
        "https://wiro.ai.example.net/0.png",
        "https://localhost/0.png",
        "file:///etc/passwd",
    ],
)
async def test_images_come_only_from_wiros_cdn_or_the_api_origin(url: str) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(never_called)) as http:
        with pytest.raises(MediaError):
            await download(http, url, sources=Sources.for_api("https://api.wiro.ai/v1"))


def test_the_allowed_sources() -> None:
    sources = Sources.for_api("http://127.0.0.1:8787/v1", ["images.example.net", "*.cdn.example.org"])
    assert sources.allows("https://cdn1.wiro.ai/x/0.png")
    assert sources.allows("http://127.0.0.1:8787/cdn/x/0.png")
    assert not sources.allows("http://127.0.0.1:8788/cdn/x/0.png")
    assert sources.allows("https://images.example.net/0.png")
    assert sources.allows("https://a.cdn.example.org/0.png")
    assert not sources.allows("https://cdn.example.org.evil.example/0.png")
    # Lookalikes that only end with the name, without the dot before it.
    assert not sources.allows("https://evilwiro.ai/0.png")
    assert not sources.allows("https://evilcdn.example.org/0.png")
    assert sources.allows("https://wiro.ai/0.png")


async def test_a_redirect_off_the_allowed_hosts_is_not_followed(
    emulator: EmulatorServer, bystander: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    elsewhere, seen = bystander
    emulator.emulator.inject("/0.png", "redirect", body=elsewhere)
    result = await call(saving(emulator, tmp_path), "generate_image", {"prompt": "redirected"})
    data = result.structured_content
    assert not result.is_error
    assert data["outputs"][0]["path"] is None
    assert any("refusing to fetch" in w for w in data["warnings"])
    assert seen == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["huge-dims", "fake-png"])
async def test_only_an_image_that_decodes_within_the_pixel_budget_is_kept(
    emulator: EmulatorServer, tmp_path: Path, kind: str
) -> None:
    emulator.emulator.inject("/0.png", kind)
    result = await call(saving(emulator, tmp_path), "generate_image", {"prompt": kind})
    data = result.structured_content
    assert not result.is_error
    assert data["succeeded"] is True
    assert data["outputs"][0]["path"] is None
    assert any("not kept" in w and data["outputs"][0]["url"] in w for w in data["warnings"])
    assert not any(b.type == "image" for b in result.content)
    assert list(tmp_path.iterdir()) == []


def test_declared_dimensions_are_checked_before_decoding() -> None:
    with pytest.raises(MediaError, match="12000x12000"):
        check_image(declared_png(12_000, 12_000), 512)
    checked = check_image(gradient_png(1512, 648, "fits"), 512)
    assert (checked.width, checked.height) == (1512, 648)
    assert checked.preview is not None


async def test_a_download_dropped_midway_is_a_warning(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.emulator.inject("/0.png", "drop")
    result = await call(saving(emulator, tmp_path), "generate_image", {"prompt": "dropped"})
    data = result.structured_content
    assert not result.is_error
    assert data["outputs"][0]["path"] is None
    assert any(data["outputs"][0]["url"] in w for w in data["warnings"])
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


async def test_saved_files_get_the_umasks_mode(emulator: EmulatorServer, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        result = await call(saving(emulator, tmp_path), "generate_image", {"prompt": "mode"})
    finally:
        os.umask(previous)
    path = Path(result.structured_content["outputs"][0]["path"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


async def test_a_full_output_disk_is_a_warning(emulator: EmulatorServer, full_disk: Path) -> None:
    result = await call(saving(emulator, full_disk), "generate_image", {"prompt": "no room"})
    data = result.structured_content
    assert not result.is_error
    assert data["succeeded"] is True
    assert any("not saved" in w and "No space left" in w for w in data["warnings"])
    assert not [p for p in full_disk.iterdir() if p.name.startswith(".partial-")]


async def test_a_read_only_output_folder_is_a_warning(emulator: EmulatorServer, read_only: Path) -> None:
    make_read_only(read_only)
    result = await call(saving(emulator, read_only), "generate_image", {"prompt": "read-only"})
    data = result.structured_content
    assert not result.is_error
    assert any("not saved" in w and "Read-only" in w for w in data["warnings"])


async def test_a_record_without_an_exit_code_delivers_its_images(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    # The reference's own Detail example has outputs and no pexit: a success, delivered as one.
    emulator.emulator.inject("/Task/Detail", "no-pexit", times=100)
    result = await call(saving(emulator, tmp_path), "generate_image", {"prompt": "no exit code"})
    data = result.structured_content
    assert not result.is_error
    assert data["succeeded"] is True
    assert Path(data["outputs"][0]["path"]).is_file()
    assert any(b.type == "image" for b in result.content)


async def test_a_detail_about_another_task_is_never_shown_as_this_one(emulator: EmulatorServer) -> None:
    async with connect(settings_for(emulator)) as client:
        made = await client.call_tool("generate_image", {"prompt": "mine", "wait": False})
        taskid = made.structured_content["taskid"]
        emulator.emulator.inject("/Task/Detail", "other-task", times=10)
        looked = await client.call_tool("get_task", {"taskid": taskid})
    assert looked.structured_content["taskid"] == taskid
    assert any("not the task asked for" in w for w in looked.structured_content["warnings"])
