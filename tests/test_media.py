"""Images that reach the person: safe downloads, safe names, atomic saves, small previews."""

from __future__ import annotations

import base64
import io
import os
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest
from PIL import Image as PILImage

from wiro_seedream_mcp.emulator.pictures import gradient_png
from wiro_seedream_mcp.media import (
    MAX_IMAGE_BYTES,
    PREVIEW_BUDGET,
    MediaError,
    download,
    file_name,
    preview,
    save,
    slug,
    sniff,
)
from wiro_seedream_mcp.wiro.seedream import SIZES, dimensions

PNG = gradient_png(64, 48, "x")


def noisy_png(width: int, height: int) -> bytes:
    """The hardest picture to compress: random pixels, full size."""
    rng = random.Random(width * height)
    picture = PILImage.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("A Red Fox, in the snow!", "a-red-fox-in-the-snow"),
        ("../../etc/passwd", "etc-passwd"),
        ("Café crème — très bon", "cafe-creme-tres-bon"),
        ("日本の風景", "image"),
        ("", "image"),
        ("a" * 100, "a" * 40),
        ("word " * 30, "word-word-word-word-word-word-word-word"),
    ],
)
def test_slug_is_safe_and_readable(prompt: str, expected: str) -> None:
    assert slug(prompt) == expected


def test_file_name_is_informative_and_safe() -> None:
    when = datetime(2026, 11, 25, 18, 1, 2, tzinfo=UTC)
    assert file_name("2221", 0, "A lighthouse", "png", when) == "20261125-180102-2221-0-a-lighthouse.png"
    hostile = file_name("../../x/../y", 1, "/etc/shadow\x00", "png", when)
    assert "/" not in hostile
    assert "\x00" not in hostile
    assert hostile == "20261125-180102-xy-1-etc-shadow.png"


# -- saving ----------------------------------------------------------------------------------


def test_save_writes_the_file_whole(tmp_path: Path) -> None:
    path = save(tmp_path / "new" / "folder", "a.png", PNG)
    assert path == (tmp_path / "new" / "folder" / "a.png").resolve()
    assert path.read_bytes() == PNG
    assert [p.name for p in path.parent.iterdir()] == ["a.png"], "a temporary file was left behind"


def test_save_never_overwrites(tmp_path: Path) -> None:
    first = save(tmp_path, "a.png", b"first")
    second = save(tmp_path, "a.png", b"second")
    third = save(tmp_path, "a.png", b"third")
    assert [first.name, second.name, third.name] == ["a.png", "a-2.png", "a-3.png"]
    assert first.read_bytes() == b"first"
    assert second.read_bytes() == b"second"


@pytest.mark.parametrize("name", ["../escape.png", "/abs.png", "sub/dir.png", ".hidden.png", ""])
def test_save_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "out"
    with pytest.raises(MediaError, match="unsafe file name"):
        save(folder, name, PNG)
    assert not (tmp_path / "escape.png").exists()


def test_save_without_hard_links_still_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    first = save(tmp_path, "a.png", b"first")
    second = save(tmp_path, "a.png", b"second")
    assert [first.name, second.name] == ["a.png", "a-2.png"]
    assert first.read_bytes() == b"first"
    assert second.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-2.png", "a.png"]


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        save(tmp_path, "a.png", PNG)
    assert list(tmp_path.iterdir()) == [], "a partial file was left behind"


# -- downloading -----------------------------------------------------------------------------


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.anyio
async def test_download_accepts_an_image() -> None:
    http = client(lambda r: httpx.Response(200, content=PNG, headers={"content-type": "image/png"}))
    image = await download(http, "https://cdn1.wiro.ai/x/0.png")
    assert (image.data, image.mime_type, image.extension) == (PNG, "image/png", "png")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://cdn1.wiro.ai/0.png",
        "javascript:alert(1)",
        "https://user:pw@cdn1.wiro.ai/0.png",
    ],
)
async def test_download_refuses_hostile_urls(url: str) -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=PNG)

    with pytest.raises(MediaError, match="refusing"):
        await download(client(handler), url)
    assert asked == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "words"),
    [
        (
            httpx.Response(200, content=b"<html>hi</html>", headers={"content-type": "text/html"}),
            "not an image",
        ),
        (httpx.Response(200, content=b"<html>hi</html>", headers={"content-type": "image/png"}), "not a PNG"),
        (
            httpx.Response(
                200, content=b"MZ\x90\x00" * 10, headers={"content-type": "application/octet-stream"}
            ),
            "not a PNG",
        ),
        (httpx.Response(404, content=b"gone"), "HTTP 404"),
        (
            httpx.Response(
                200,
                content=PNG,
                headers={"content-type": "image/png", "content-length": str(MAX_IMAGE_BYTES + 1)},
            ),
            "limit",
        ),
    ],
)
async def test_download_refuses_what_is_not_a_usable_image(response: httpx.Response, words: str) -> None:
    with pytest.raises(MediaError, match=words):
        await download(client(lambda r: response), "https://cdn1.wiro.ai/0.png")


@pytest.mark.anyio
async def test_download_stops_at_the_cap_without_a_length() -> None:
    sent: list[int] = []

    async def endless() -> object:
        yield PNG
        for _ in range(10_000):
            sent.append(1)
            yield b"\x00" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless(), headers={"content-type": "image/png"})  # type: ignore[arg-type]

    with pytest.raises(MediaError, match="over the 1048576-byte limit"):
        await download(client(handler), "https://cdn1.wiro.ai/0.png", max_bytes=1024 * 1024)
    assert len(sent) < 100, "the body was read far past the cap"


def test_sniff_knows_the_image_kinds() -> None:
    assert sniff(PNG) == ("image/png", "png")
    assert sniff(b"\xff\xd8\xff\xe0rest") == ("image/jpeg", "jpg")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image/webp", "webp")
    assert sniff(b"GIF89a...") == ("image/gif", "gif")
    assert sniff(b"<svg xmlns=") is None


# -- previews --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_preview_fits_the_limits_for_every_size(size: str) -> None:
    width, height = dimensions(size)
    data, mime = preview(noisy_png(width, height), 512)
    assert mime == "image/jpeg"
    assert len(data) <= PREVIEW_BUDGET < 1024 * 1024
    with PILImage.open(io.BytesIO(base64.b64decode(data))) as small:
        assert max(small.size) == 512
        assert abs(small.width / small.height - width / height) < 0.02


def test_preview_shrinks_until_it_fits_a_tight_budget() -> None:
    data, _ = preview(noisy_png(1024, 1024), 1024, budget=40_000)
    assert len(data) <= 40_000


def test_preview_of_garbage_raises() -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever Pillow raises; callers turn it into a warning
        preview(b"\x89PNG\r\n\x1a\nthis is not really a png", 512)
