"""The view's one HTML file: ``view.html`` with the vendored ext-apps client inlined.

The client (``vendor/app-with-deps.js``, kept byte-identical to the npm package's build) is an ES
module that ends in one ``export{…}`` list. Inlined in the page's own module script, that list
becomes a plain object, ``McpApps``, so the page needs no import, no URL and no network.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from ..wiro.seedream import DEFAULT_SIZE, SIZES

VIEW_URI = "ui://wiro-seedream/view.html"
HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "view.html"
CLIENT = HERE / "vendor" / "app-with-deps.js"
# Where the client goes in view.html.
MARKER = "/* @ext-apps-client@ */"
# Where the documented sizes go.
SIZES_MARKER = '["@sizes@"]'
DEFAULT_SIZE_MARKER = "@default-size@"
_EXPORTS = re.compile(r"export\s*\{([^{}]*)\}\s*;?\s*$")


def inline_module(source: str, name: str = "McpApps") -> str:
    """``source`` with its closing export list turned into ``const <name> = {…}``."""
    found = _EXPORTS.search(source)
    if found is None:
        raise ValueError("the ext-apps client does not end in an export list")
    pairs = []
    for part in found.group(1).split(","):
        local, _, exported = part.strip().partition(" as ")
        if local:
            pairs.append(f"{(exported or local).strip()}: {local.strip()}")
    return f"{source[: found.start()]}\nconst {name} = {{{', '.join(pairs)}}};\n"


@functools.cache
def html() -> str:
    """The page, built once per process on first read."""
    template = TEMPLATE.read_text(encoding="utf-8")
    if template.count(MARKER) != 1:
        raise ValueError(f"{TEMPLATE.name} must hold {MARKER} exactly once")
    client = inline_module(CLIENT.read_text(encoding="utf-8"))
    if "</script" in client.lower():
        raise ValueError("the ext-apps client holds '</script' and cannot be inlined")
    filled = template.replace(SIZES_MARKER, json.dumps(list(SIZES))).replace(
        DEFAULT_SIZE_MARKER, DEFAULT_SIZE
    )
    return filled.replace(MARKER, client)
