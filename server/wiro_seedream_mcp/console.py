"""Lines for the person at a terminal (``demo``, ``doctor``, ``emulator``). Never used by ``serve``,
whose stdout carries MCP messages only."""

from __future__ import annotations


def say(text: str = "") -> None:
    print(text, flush=True)
