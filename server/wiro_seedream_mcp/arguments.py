"""One rule for every tool argument, and one line for every refusal.

The rule: types are strict, exactly what the published JSON Schema allows (``seed: "5"``,
``watermark: 1`` and ``guidanceScale: "7.5"`` are refused; a whole number such as ``5.0`` is an
integer, as JSON Schema says). Two relaxations, because real clients need them:

* a task id may come as a number (``taskid: 254556``): it becomes its decimal string;
* for an optional argument, ``null`` and ``""`` mean "not given": the default applies. Strict
  function calling (OpenAI's) sends every property, with nulls for the ones it does not use.

Every refusal is one line that names the argument, says what is allowed and shows what was
sent, e.g. ``size must be one of 1024x1024, 864x1152, ...; got "999x999"``, with no validator
type tags or links in it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict, ValidationError, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

# How much of a rejected value is shown back.
SHOWN = 60


def publish_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema in which every optional argument also accepts ``null``, and no
    argument it does not name (``additionalProperties: false``: a misspelt ``sise`` is refused,
    not ignored while a paid task starts with the default size).

    The property's own type keywords move into the first branch of an ``anyOf`` beside
    ``{"type": "null"}``; its title, description and default stay on top, so the documented
    defaults, enums and bounds remain visible.
    """
    required = set(schema.get("required", []))
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        branches = prop.get("anyOf", [prop])
        if name in required or any(branch.get("type") == "null" for branch in branches):
            properties[name] = prop
            continue
        top = {key: prop[key] for key in ("title", "description", "default") if key in prop}
        own = {key: value for key, value in prop.items() if key not in top}
        properties[name] = {**top, "anyOf": [*own.get("anyOf", [own]), {"type": "null"}]}
    return {**schema, "properties": properties, "additionalProperties": False}


def unknown_argument(tool: str, arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """One line refusing an argument the tool does not take, naming the ones it does; None if all
    are known."""
    known = list(schema.get("properties", {}))
    unknown = sorted(name for name in arguments if name not in known)
    if not unknown:
        return None
    takes = ", ".join(known) if known else "no arguments"
    return f"{tool} has no argument {unknown[0]!r}; it takes {takes}"


def _task_id(value: Any) -> Any:
    """A task id given as a number becomes its decimal string; a string is stripped."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"taskid must be a task id as generate_image returned it, not {value}")
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


# A task id: a string, or a number that becomes its decimal string. Published as both.
TaskId = Annotated[
    str,
    BeforeValidator(_task_id),
    Strict(),
    Field(min_length=1),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}]}),
]
# The same, optional (a server may publish the null branch itself).
MaybeTaskId = TaskId | SkipJsonSchema[None]


def unset_blanks(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` without the optional ones given as ``null`` or a blank string."""
    required = set(schema.get("required", []))
    return {
        name: value
        for name, value in arguments.items()
        if name in required or not (value is None or (isinstance(value, str) and not value.strip()))
    }


def one_line(exc: ValidationError, schema: dict[str, Any]) -> str:
    """The refusal of ``exc`` as one line: each bad argument, what it may be, what was sent."""
    properties: dict[str, Any] = schema.get("properties", {})
    seen: set[str] = set()
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "the arguments"
        if name in seen:
            continue  # a union reports one error per branch: the first says enough
        seen.add(name)
        if error["type"] == "missing":
            parts.append(f"{name} is required")
        elif error["type"] == "value_error" and error.get("ctx", {}).get("error") is not None:
            message = str(error["ctx"]["error"])
            parts.append(message if name.lower() in message.lower() else f"{name}: {message}")
        else:
            parts.append(
                f"{name} must be {allowed(properties.get(name, {}))}; got {shown(error.get('input'))}"
            )
    return "; ".join(parts) or "the arguments are not valid"


def allowed(prop: dict[str, Any]) -> str:
    """What a property's schema allows, in words."""
    branches = prop.get("anyOf") or [prop]
    words = [_branch(branch) for branch in branches if branch.get("type") != "null"]
    text = " or ".join(w for w in words if w) or "a valid value"
    if any(branch.get("type") == "null" for branch in branches):
        text += " (or null for the default)"
    return text


def _branch(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    kind = schema.get("type")
    low, high = schema.get("minimum"), schema.get("maximum")
    bounds = f" from {_number(low)} to {_number(high)}" if low is not None and high is not None else ""
    if not bounds and low is not None:
        bounds = f" of at least {_number(low)}"
    longest = schema.get("maxLength")
    text = "a non-blank string" + (f" of at most {longest} characters" if longest else "")
    if schema.get("format") == "uri":
        text = "an absolute http(s) URL"
    words = {"boolean": "true or false", "integer": f"an integer{bounds}", "number": f"a number{bounds}"}
    return words.get(str(kind), text if kind == "string" else "")


def _number(value: float) -> str:
    """1, 10, 2147483647 and 0.5 as they read, never in exponent form."""
    return str(int(value)) if float(value).is_integer() else str(value)


def shown(value: Any) -> str:
    """A rejected value, short enough for one line."""
    if isinstance(value, str) and len(value) > SHOWN:
        return f"a string of {len(value)} characters"
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    text = " ".join(text.split())
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
