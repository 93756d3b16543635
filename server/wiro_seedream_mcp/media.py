"""Getting a finished image to the person: download it safely, save it, make a small preview.

Nothing here trusts what comes back from the network: an image is fetched only from Wiro's CDN
or the configured API's own origin (checked again on every redirect), the body is streamed with
a size cap, it must say it is an image and start like one, its declared dimensions must fit a
pixel budget before it is decoded, and it must decode. Files get names made here (never the
server's), stay inside the output folder, never overwrite one another, appear whole or not at
all, and get the ordinary permissions of the user's umask.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import secrets
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2 as httpx

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 50 * 1024 * 1024
# Seedream's images are at most about 1 MP (upstream, 2048 x 2048 at the very most): anything
# declaring more pixels than that is refused before it is decoded.
MAX_PIXELS = 2048 * 2048
MAX_REDIRECTS = 5
# Wiro's CDN (cdn1.wiro.ai in the reference's output URLs) lives under this domain.
WIRO_DOMAIN = "wiro.ai"
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


@dataclass(frozen=True)
class Sources:
    """Where images may be fetched from: Wiro's CDN over https (any host under wiro.ai), the
    configured API's own origin (the emulator, a proxy), and any extra host names given."""

    api_origin: str | None = None
    extra_hosts: tuple[str, ...] = ()

    @classmethod
    def for_api(cls, base_url: str, extra_hosts: Iterable[str] = ()) -> Sources:
        parts = urlsplit(base_url)
        return cls(f"{parts.scheme}://{parts.netloc}".lower(), tuple(h.lower() for h in extra_hosts))

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self.api_origin is not None and f"{parts.scheme}://{parts.netloc}".lower() == self.api_origin:
            return True
        if parts.scheme != "https" or not host:
            return False
        if host == WIRO_DOMAIN or host.endswith("." + WIRO_DOMAIN):
            return True
        return any(
            host == extra or (extra.startswith("*.") and host.endswith(extra[1:]))
            for extra in self.extra_hosts
        )


# With no sources given, only Wiro's CDN.
WIRO_ONLY = Sources()


def check_url(url: str, sources: Sources = WIRO_ONLY) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MediaError(f"refusing to fetch {url[:80]!r}: only http(s) URLs are fetched")
    if parts.username or parts.password:
        raise MediaError("refusing to fetch a URL with credentials in it")
    if not sources.allows(url):
        raise MediaError(
            f"refusing to fetch from {parts.hostname[:80]!r}: images are fetched only from Wiro's CDN "
            "(https://*.wiro.ai), the configured API's origin, or a host in WIRO_DOWNLOAD_HOSTS"
        )


async def download(
    http: httpx.AsyncClient, url: str, *, sources: Sources = WIRO_ONLY, max_bytes: int = MAX_IMAGE_BYTES
) -> Image:
    """Fetch one image, streamed, refusing anything too big, from elsewhere, or not an image.

    Redirects are followed by hand, so that every hop is checked before it is requested.
    """
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(url, sources)
            async with http.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                return await _read_image(response, max_bytes)
    except httpx.HTTPError as exc:
        raise MediaError(f"the image could not be downloaded: {exc}") from exc
    raise MediaError(f"the image URL redirected more than {MAX_REDIRECTS} times")


async def _read_image(response: httpx.Response, max_bytes: int) -> Image:
    if response.status_code != 200:
        raise MediaError(f"the image URL answered HTTP {response.status_code}")
    declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not declared.startswith("image/") and declared not in _GENERIC_TYPES:
        raise MediaError(f"the image URL sent {declared[:60]!r}, not an image")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise MediaError(f"the image is {int(length)} bytes, over the {max_bytes}-byte limit")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise MediaError(f"the image is over the {max_bytes}-byte limit")
    kind = sniff(bytes(body[:16]))
    if kind is None:
        raise MediaError("the downloaded file is not a PNG, JPEG, GIF or WebP image")
    return Image(bytes(body), *kind)


@dataclass(frozen=True)
class Checked:
    """An image that decoded whole: its size, and the inline preview when one was asked for."""

    width: int
    height: int
    preview: tuple[str, str] | None  # (base64, mime type)
    preview_problem: str | None = None


def check_image(
    data: bytes, preview_side: int | None, max_pixels: int = MAX_PIXELS, budget: int = PREVIEW_BUDGET
) -> Checked:
    """Decode ``data`` within the pixel budget (MediaError if it cannot be), and make its preview.

    The dimensions are read from the header first: a file that declares more than
    ``max_pixels`` is refused before a single pixel is decoded.
    """
    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            # The pixel budget below is stricter than Pillow's own bomb warning.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            picture = PILImage.open(io.BytesIO(data))  # reads the header only
    except PILImage.DecompressionBombError as exc:
        raise MediaError("the image declares far more pixels than a Seedream image has; not decoded") from exc
    except Exception as exc:  # Pillow raises many kinds for a broken file
        raise MediaError(f"the file does not decode as an image ({type(exc).__name__})") from exc
    with picture:
        width, height = picture.size
        if width * height > max_pixels:
            raise MediaError(
                f"the image declares {width}x{height} pixels, more than a Seedream image has; not decoded"
            )
        try:
            picture.load()
        except Exception as exc:
            raise MediaError(f"the file does not decode as an image ({type(exc).__name__})") from exc
        small, problem = None, None
        if preview_side:
            try:
                small = _preview_of(picture, preview_side, budget)
            except Exception as exc:  # a preview problem must not fail the image
                problem = f"no preview ({exc})"
    return Checked(width, height, small, problem)


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
    temp = str(folder / f".partial-{secrets.token_hex(8)}")
    # 0o666 less the umask: the ordinary mode of a file the user makes (mkstemp would give 0600).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
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
    checked = check_image(data, max_side, max_pixels=2**31, budget=budget)
    if checked.preview is None:
        raise MediaError(checked.preview_problem or "no preview")
    return checked.preview


def _preview_of(picture: Any, max_side: int, budget: int) -> tuple[str, str]:
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


async def check_image_async(data: bytes, preview_side: int | None) -> Checked:
    """:func:`check_image` on a worker thread, as many at once as there are cores."""
    global _PREVIEW_SLOTS  # noqa: PLW0603 - one limiter per process, made inside the event loop
    if _PREVIEW_SLOTS is None:
        _PREVIEW_SLOTS = anyio.CapacityLimiter(max(1, min(4, os.cpu_count() or 1)))
    return await anyio.to_thread.run_sync(check_image, data, preview_side, limiter=_PREVIEW_SLOTS)
