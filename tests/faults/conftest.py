"""What the fault tests share: a stand-in disk that fills up or is read-only, and short calls."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, TextContent

from wiro_seedream_mcp.config import Settings

from ..conftest import connect


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(settings: Settings, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with connect(settings) as client:
        return await client.call_tool(tool, arguments)


def _mount(folder: Path, options: str) -> None:
    """Mount a small tmpfs on ``folder`` (root only); skip where that is not possible."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        message = "needs root to mount a small tmpfs (CI runs as root)"
        if os.environ.get("WIRO_TEST_REQUIRE_ALL"):
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)  # noqa: S607


def _unmount(folder: Path) -> None:
    if subprocess.run(["umount", str(folder)], check=False).returncode != 0:  # noqa: S607
        subprocess.run(["umount", "-l", str(folder)], check=False)  # noqa: S607


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 64 KiB file system that is already full."""
    folder = tmp_path / "full"
    folder.mkdir()
    _mount(folder, "size=64k")
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        yield folder
    finally:
        _unmount(folder)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder that refuses writes, even to root: a tmpfs remounted read-only.

    Files put in ``seed/`` before the remount are copied in first.
    """
    folder = tmp_path / "ro"
    folder.mkdir()
    _mount(folder, "size=1m")
    try:
        yield folder
    finally:
        _unmount(folder)


def make_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)  # noqa: S607
