"""What the emulator knows of Wiro and of this model, written down from the API reference on its
own: it shares nothing with the client it checks, so a mistake in the client's copy of these
facts (a status name, a size, the model's path) shows up as a disagreement, not as a match."""

from __future__ import annotations

from typing import Final

MODEL_SLUG = "bytedance/text-to-image-seedream-v3"

# The documented sizes and their aspect ratios.
SIZES: Final = {
    "1024x1024": "1:1",
    "864x1152": "3:4",
    "1152x864": "4:3",
    "1280x720": "16:9",
    "720x1280": "9:16",
    "832x1248": "2:3",
    "1248x832": "3:2",
    "1512x648": "21:9",
}

DEFAULT_KEY = "emulator-key"
DEFAULT_SECRET = "emulator-secret"  # noqa: S105 - the emulator's own made-up project

FAIL_MARKER = "[emulator:fail]"
ERROR_MARKER = "[emulator:error]"

# Cost per second of the emulated model, in dollars.
COST_PER_SECOND = "0.003000000000"


class Status:
    """Wiro's task statuses, in the order a task goes through them."""

    QUEUE: Final = "task_queue"
    ACCEPT: Final = "task_accept"
    PREPROCESS_START: Final = "task_preprocess_start"
    PREPROCESS_END: Final = "task_preprocess_end"
    ASSIGN: Final = "task_assign"
    START: Final = "task_start"
    OUTPUT: Final = "task_output"
    OUTPUT_FULL: Final = "task_output_full"
    END: Final = "task_end"
    POSTPROCESS_START: Final = "task_postprocess_start"
    POSTPROCESS_END: Final = "task_postprocess_end"
    CANCEL: Final = "task_cancel"
    ERROR: Final = "task_error"

    TERMINAL: Final = frozenset({POSTPROCESS_END, CANCEL, ERROR})


def dimensions(size: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``."""
    width, height = size.split("x")
    return int(width), int(height)
