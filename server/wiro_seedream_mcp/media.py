"""Getting a finished image to the person: download it safely, save it, make a small preview.

Nothing here trusts what comes back from the network: the URL must be plain http(s), the body
is streamed with a size cap, and it must both say it is an image and start like one. Files get
names made here (never the server's), stay inside the output folder, never overwrite one
another, and appear whole or not at all.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2 as httpx

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 50 * 1024 * 1024
# An inline image's base64 must stay well under the 1 MB tool-result limit of desktop hosts.
PREVIEW_BUDGET = 600 * 1024

_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    # (signature, offset, mime type, extension)
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"GIF87a", 0, "image/gif", "gif"),
    (b"GIF89a", 0, "image/gif", "gif"),
    (b"WEBP", 8, "image/webp", "webp"),
)
_GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")


class MediaError(Exception):
    """An output could not be fetched or kept; the message says why."""


@dataclass(frozen=True)
class Image:
    data: bytes
    mime_type: str
    extension: str


def sniff(data: bytes) -> tuple[str, str] | None:
    """(mime type, extension) when ``data`` starts like an image this server accepts."""
    for signature, offset, mime, ext in _MAGIC:
        if data[offset : offset + len(signature)] == signature and (ext != "webp" or data[:4] == b"RIFF"):
            return mime, ext
    return None


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MediaError(f"refusing to fetch {url[:80]!r}: only http(s) URLs are fetched")
    if parts.username or parts.password:
        raise MediaError("refusing to fetch a URL with credentials in it")


async def download(http: httpx.AsyncClient, url: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> Image:
    """Fetch one image, streamed, refusing anything too big or that is not an image."""
    check_url(url)
    try:
        async with http.stream("GET", url, follow_redirects=True) as response:
            if response.status_code != 200:
                raise MediaError(f"the image URL answered HTTP {response.status_code}")
            declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not declared.startswith("image/") and declared not in _GENERIC_TYPES:
                raise MediaError(f"the image URL sent {declared!r}, not an image")
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise MediaError(f"the image is {int(length)} bytes, over the {max_bytes}-byte limit")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise MediaError(f"the image is over the {max_bytes}-byte limit")
    except httpx.HTTPError as exc:
        raise MediaError(f"the image could not be downloaded: {exc}") from exc
    kind = sniff(bytes(body[:16]))
    if kind is None:
        raise MediaError("the downloaded file is not a PNG, JPEG, GIF or WebP image")
    return Image(bytes(body), *kind)


def slug(text: str, limit: int = 40) -> str:
    """A short, safe, readable file-name part: ``"A Red Fox!"`` -> ``"a-red-fox"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split()
    kept: list[str] = []
    for word in words:
        if len("-".join([*kept, word])) > limit:
            break
        kept.append(word)
    if not kept and words:
        kept = [words[0][:limit]]  # one very long word: cut it
    return "-".join(kept) or "image"


def file_name(taskid: str, index: int, prompt: str, extension: str, when: datetime | None = None) -> str:
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "", taskid)[:32] or "task"
    return f"{stamp}-{safe_id}-{index}-{slug(prompt)}.{extension}"


def save(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name`` atomically, never overwriting: ``-2``, ``-3`` on collision."""
    if not name or Path(name).name != name or name.startswith("."):
        raise MediaError(f"unsafe file name {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    stem, dot, ext = name.rpartition(".")
    fd, temp = tempfile.mkstemp(prefix=".partial-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        for attempt in range(1, 1000):
            candidate = folder / (name if attempt == 1 else f"{stem}-{attempt}{dot}{ext}")
            try:
                _publish(temp, candidate)
            except FileExistsError:
                continue
            return candidate
        raise MediaError(f"no free file name for {name!r} in {folder}")
    finally:
        Path(temp).unlink(missing_ok=True)


def _publish(temp: str, target: Path) -> None:
    """Give the finished temporary file its name, whole, never replacing an existing file.

    A hard link does both at once. Where the file system has no hard links (FAT, some network
    shares), the name is first claimed with an exclusive create, then the file moved onto it.
    """
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError:
        claim = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(claim)
        os.replace(temp, target)


async def save_async(folder: Path, name: str, data: bytes) -> Path:
    return await anyio.to_thread.run_sync(save, folder, name, data)


def preview(data: bytes, max_side: int, budget: int = PREVIEW_BUDGET) -> tuple[str, str]:
    """(base64 data, mime type) of a downscaled JPEG whose base64 stays within ``budget``."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as picture:
        picture.draft("RGB", (max_side, max_side))
        small = picture.convert("RGB")
    small.thumbnail((max_side, max_side), reducing_gap=1.0)
    for quality in (85, 70, 55, 40):
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=quality, optimize=True)
        encoded = base64.b64encode(out.getvalue()).decode()
        if len(encoded) <= budget:
            return encoded, "image/jpeg"
        small.thumbnail((small.width * 3 // 4, small.height * 3 // 4))
    raise MediaError("the preview could not be made small enough")


# Previews are CPU work: as many at once as there are cores to run them, no more.
_PREVIEW_SLOTS: anyio.CapacityLimiter | None = None


async def preview_async(data: bytes, max_side: int) -> tuple[str, str]:
    global _PREVIEW_SLOTS  # noqa: PLW0603 - one limiter per process, made inside the event loop
    if _PREVIEW_SLOTS is None:
        _PREVIEW_SLOTS = anyio.CapacityLimiter(max(1, min(4, os.cpu_count() or 1)))
    return await anyio.to_thread.run_sync(preview, data, max_side, limiter=_PREVIEW_SLOTS)
