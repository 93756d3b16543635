"""Wiro's own checks of a request body and of the model's inputs, with its messages."""

from __future__ import annotations

import json
import math
from typing import Any

from .reference import SIZES
from .tasks import RefusedError


def json_body(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    if "application/json" not in headers.get("content-type", ""):
        raise RefusedError("Request body must be JSON (Content-Type: application/json).")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise RefusedError("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RefusedError("Request body must be a JSON object.")
    return body


def validate_inputs(body: dict[str, Any]) -> dict[str, Any]:
    """Wiro's own checks of the model's inputs, with its defaults for what is missing."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RefusedError("Request parameter [prompt] required")
    size = body.get("size", "1024x1024")
    if size not in SIZES:
        raise RefusedError(f"Request parameter [size] must be one of {', '.join(SIZES)}")
    watermark = body.get("watermark", "false")
    if watermark not in ("true", "false"):
        raise RefusedError('Request parameter [watermark] must be one of "false", "true"')
    guidance = _number(body.get("guidanceScale", 1), "guidanceScale")
    if not 1 <= guidance <= 10:
        raise RefusedError("guidanceScale must be between 1 and 10")
    seed = _number(body.get("seed", 1), "seed")
    if not float(seed).is_integer() or not 0 <= seed <= 2_147_483_647:
        raise RefusedError("seed must be between 0 and 2147483647")
    return {
        "prompt": prompt,
        "size": size,
        "watermark": watermark,
        "guidanceScale": str(body.get("guidanceScale", 1)),
        "seed": str(int(seed)),
    }


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise RefusedError(f"Request parameter [{name}] must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RefusedError(f"Request parameter [{name}] must be a number") from None
    if not math.isfinite(number):
        raise RefusedError(f"Request parameter [{name}] must be a number")
    return number
