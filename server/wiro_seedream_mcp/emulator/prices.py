"""What the emulated model costs: its record in the catalogue, as ``Tool/Detail`` shows it, and
what a finished task is charged by that price list.

Wiro's catalogue gives a price list (``dynamicprice``, a JSON string) of lines
``{price, priceMethod, inputs?}``: ``cpr`` per request, ``cps`` per second of run time, ``cpo``
per output, ``cp-pixel`` per output pixel; a line with ``inputs`` applies to tasks with those
inputs only and wins over a line without.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .reference import COST_PER_SECOND, MODEL_SLUG, dimensions

# About what Seedream 3.0 costs per image on hosted APIs: one price per request.
DEFAULT_PRICES: tuple[dict[str, Any], ...] = ({"price": 0.03, "priceMethod": "cpr"},)


def _applies(line: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    wanted = line.get("inputs") or {}
    return all(str(inputs.get(name, "")) == str(value) for name, value in wanted.items())


def price_line(prices: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The line that prices a task with ``inputs``: one naming its inputs first, else a general one."""
    fitting = [line for line in prices if _applies(line, inputs)]
    fitting.sort(key=lambda line: not line.get("inputs"))
    return fitting[0] if fitting else None


def charge(prices: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any], ran: float) -> float:
    """What a task that succeeded after ``ran`` seconds of run time costs, in USD."""
    line = price_line(prices, inputs)
    if line is None:
        return ran * float(COST_PER_SECOND)
    price, method = float(line["price"]), line.get("priceMethod")
    if method == "cps":
        return price * ran
    if method == "cp-pixel":
        width, height = dimensions(str(inputs.get("size") or "1024x1024"))
        return price * width * height
    return price  # cpr, cpo: one request, one output


def tool_record(prices: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The model's catalogue record, with Wiro's string-typed fields."""
    owner, project = MODEL_SLUG.split("/")
    general = price_line(prices, {})
    approximately = float(general["price"]) if general and general.get("priceMethod") == "cpr" else None
    return {
        "id": "1",
        "slugowner": owner,
        "slugproject": project,
        "title": "Text-to-image seedream v3",
        "dynamicprice": json.dumps(list(prices)),
        "cps": COST_PER_SECOND,
        "approximatelycost": "" if approximately is None else f"{approximately:.12f}",
    }
