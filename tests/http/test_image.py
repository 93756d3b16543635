"""The image ``serve --http`` ships in. The Dockerfile cannot be built here (no Docker engine), so
what it says is checked against the project it packs."""

from __future__ import annotations

import re
import tomllib

from ..nodetools import ROOT


def test_the_image_is_small_non_root_uv_built_and_serves_http() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE), "the image must not run as root"
    assert "uv sync --locked --no-dev --extra postgres" in dockerfile
    assert dockerfile.count("FROM ") == 2, "a build stage and a runtime stage without uv or sources"
    [runtime] = re.findall(r"^FROM (\S+)$", dockerfile, flags=re.MULTILINE)
    assert "slim" in runtime
    version = re.search(r"python:(\d+)\.(\d+)", runtime)
    assert version is not None
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    low = pyproject["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, version.groups())) >= tuple(map(int, low.split(".")))
    assert "asyncpg" in str(pyproject["project"]["optional-dependencies"]["postgres"])
    assert '"serve", "--http", "--host", "0.0.0.0"' in dockerfile
    assert "/healthz" in dockerfile
    # Every file it copies is in the build context .dockerignore lets through.
    ignore = (ROOT / ".dockerignore").read_text()
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for name in copied.split():
            assert (ROOT / name).exists(), name
            assert f"!{name}" in ignore or f"!{name}/" in ignore, name
    uv = re.search(r"ghcr.io/astral-sh/uv:(\S+) ", dockerfile)
    assert uv is not None and re.fullmatch(r"\d+\.\d+\.\d+", uv.group(1)), "pin uv's image"
