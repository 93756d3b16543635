"""ByteDance Seedream 3.0 on Wiro: the endpoint, the documented inputs, their defaults and limits.

Everything here mirrors the model's reference page: the same input names, the same defaults,
the same eight size presets. The page's help texts say "video" for this image model; the
descriptions below say what each input does for an image.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic.json_schema import SkipJsonSchema

MODEL_SLUG = "bytedance/text-to-image-seedream-v3"
RUN_PATH = f"/Run/{MODEL_SLUG}"

Size = Literal[
    "1024x1024",
    "864x1152",
    "1152x864",
    "1280x720",
    "720x1280",
    "832x1248",
    "1248x832",
    "1512x648",
]
SIZES: tuple[str, ...] = get_args(Size)
ASPECT_RATIOS: dict[str, str] = {
    "1024x1024": "1:1",
    "864x1152": "3:4",
    "1152x864": "4:3",
    "1280x720": "16:9",
    "720x1280": "9:16",
    "832x1248": "2:3",
    "1248x832": "3:2",
    "1512x648": "21:9",
}

DEFAULT_PROMPT = (
    "A tranquil mountain lake at dawn, mist hovering above the water, pine trees reflected "
    "perfectly, photorealistic scenery."
)
DEFAULT_SIZE: Size = "1024x1024"
DEFAULT_WATERMARK = False
# Whole numbers, so the published schema reads 1 and 10 as the reference does.
GUIDANCE_MIN, GUIDANCE_MAX = 1, 10
DEFAULT_GUIDANCE: float = 1
SEED_MIN, SEED_MAX, DEFAULT_SEED = 0, 2_147_483_647, 1
# Seedream works best under about 600 English words (some 4,000 characters); a prompt far longer
# than that is refused before it is sent, which also keeps every answer about tasks small.
MAX_PROMPT_CHARS = 10_000
MAX_URL_CHARS = 2_048

# The reference's "inspires": example prompts for people to start from.
EXAMPLE_PROMPTS: tuple[str, ...] = (
    DEFAULT_PROMPT,
    "A peaceful beach at sunrise with turquoise water, seashells scattered on the sand, and palm "
    "trees swaying in the breeze.",
    "A majestic lion wearing a golden crown, sitting on a stone throne in a dark medieval castle, "
    "ultra-detailed fantasy art.",
    "An astronaut standing on an alien desert planet with two suns in the sky, wearing a futuristic "
    "space suit, cinematic sci-fi concept art.",
    "A cozy Scandinavian living room interior with wooden furniture, a fireplace, soft warm lighting, "
    "and a large window showing snowy mountains.",
)


def dimensions(size: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``."""
    width, height = size.split("x")
    return int(width), int(height)


# Characters that show nothing: spaces and separators, control and format characters (the BOM,
# zero-width spaces and joiners), surrogates, private-use and unassigned code points.
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def visible(text: str) -> bool:
    """Whether ``text`` has at least one character a person would see."""
    return any(unicodedata.category(char) not in _INVISIBLE for char in text)


def _prompt_check(value: str) -> str:
    bad = next((c for c in value if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS), None)
    if bad is not None:
        raise ValueError(f"the prompt must not contain control characters (found U+{ord(bad):04X})")
    if not visible(value):
        raise ValueError("the prompt is blank: describe the image to make, in words")
    return value


def whole_number(value: Any) -> Any:
    """A JSON number with no fraction (``5.0``) is an integer, as JSON Schema says; nothing else changes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _http_url(value: str) -> str:
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"callbackUrl must be at most {MAX_URL_CHARS} characters")
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in value):
        raise ValueError("callbackUrl must be a URL without spaces or control characters")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ValueError("callbackUrl has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("callbackUrl must be an absolute http:// or https:// URL")
    return value


_SIZE_HELP = ", ".join(f"{size} ({ratio})" for size, ratio in ASPECT_RATIOS.items())

Prompt = Annotated[
    str,
    Strict(),
    Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        title="Prompt",
        # In the schema only: the validator below gives the clearer message.
        json_schema_extra={"pattern": r"\S"},
        description=(
            "What the image should show, in plain words: subject, setting, style, lighting, "
            "composition. Under about 600 English words works best. Text to appear in the "
            "image can be given in quotes."
        ),
    ),
    AfterValidator(_prompt_check),
]
SizeParam = Annotated[
    Size,
    Field(
        title="Size", description=f"Image resolution, width x height in pixels (aspect ratio): {_SIZE_HELP}."
    ),
]
Watermark = Annotated[
    bool,
    Strict(),
    Field(title="Watermark", description="Whether the generated image carries a watermark."),
]
GuidanceScale = Annotated[
    float,
    Strict(),
    Field(
        ge=GUIDANCE_MIN,
        le=GUIDANCE_MAX,
        title="Guidance Scale",
        description=(
            "How closely the image follows the prompt, from 1 to 10. Higher values give the "
            "model less freedom and a stronger match to the prompt."
        ),
    ),
]
Seed = Annotated[
    int,
    Strict(),
    Field(
        ge=SEED_MIN,
        le=SEED_MAX,
        title="Seed",
        description=(
            "Seed for the randomness of the image: the same seed and inputs give a similar "
            "image again. 0 picks a random seed."
        ),
    ),
    # After the constraints, so it runs before them: 5.0 is the integer 5.
    BeforeValidator(whole_number),
]


def optional_text(description: str, *, title: str | None = None, **schema: Any) -> Any:
    """``Field`` of an optional string argument: no ``default`` in the schema (leaving the
    argument out is how a caller says "none"); ``schema`` adds JSON Schema keywords."""

    def shape(published: dict[str, Any]) -> None:
        published.pop("default", None)
        published.update(schema)

    return Field(default=None, title=title, description=description, json_schema_extra=shape)


# An optional string whose schema shows only the string (see optional_text); a server that
# publishes it may add the null branch itself.
MaybeText = str | SkipJsonSchema[None]

CallbackUrl = Annotated[
    MaybeText,
    optional_text(
        "Optional http(s) URL that Wiro sends a POST request to when the task is completed.",
        title="Callback URL",
        format="uri",
        pattern="^https?://",
    ),
    AfterValidator(lambda v: v if v is None else _http_url(v)),
]


class SeedreamInputs(BaseModel):
    """The inputs of one Run, validated before anything is sent (or paid for)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: Prompt
    size: SizeParam = DEFAULT_SIZE
    watermark: Watermark = DEFAULT_WATERMARK
    guidanceScale: GuidanceScale = DEFAULT_GUIDANCE  # noqa: N815 - Wiro's field name
    seed: Seed = DEFAULT_SEED
    callbackUrl: CallbackUrl = None  # noqa: N815 - Wiro's field name

    def to_wire(self) -> dict[str, Any]:
        """The Run body, as the reference shows it: ``watermark`` is the string "true"/"false"."""
        body: dict[str, Any] = {
            "prompt": self.prompt,
            "size": self.size,
            "watermark": "true" if self.watermark else "false",
            "guidanceScale": _plain_number(self.guidanceScale),
            "seed": self.seed,
        }
        if self.callbackUrl is not None:
            body["callbackUrl"] = self.callbackUrl
        return body


def _plain_number(value: float) -> int | float:
    """Send 1 rather than 1.0 where the value is whole, as the reference does."""
    return int(value) if float(value).is_integer() else value
