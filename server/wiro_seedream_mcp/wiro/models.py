"""Pydantic models of Wiro's responses.

Wiro sends most numbers as strings ("202472", "0.003510000000", "6.0000") and uses "" or
null for "none"; the fields below expose them typed. Fields this project does not use are
kept (``extra="allow"``) and never make parsing fail.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# The longest failure reason passed on: Wiro's debug output can be long, an answer must stay small.
MAX_REASON = 1_000
# Seedream makes one image a task; a record listing more than this many outputs is cut here.
MAX_OUTPUTS = 16


class TaskStatus:
    """Wiro's task statuses. Any status not listed as terminal means the task is still running."""

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

    # The documented lifecycle, in order.
    LIFECYCLE: Final = (
        QUEUE,
        ACCEPT,
        PREPROCESS_START,
        PREPROCESS_END,
        ASSIGN,
        START,
        OUTPUT,
        OUTPUT_FULL,
        END,
        POSTPROCESS_START,
        POSTPROCESS_END,
    )
    TERMINAL: Final = frozenset({POSTPROCESS_END, CANCEL, ERROR})


def _blank_to_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _to_decimal(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None or isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _to_int(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        try:
            return int(Decimal(value))
        except InvalidOperation:
            return None
    return value


def _to_float(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _to_str(value: Any) -> Any:
    if value is None:
        return None
    return str(value)


# No real output link is longer than this; a longer one is left out rather than passed on.
MAX_URL = 2_048


def _first_outputs(value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        return value
    fitting = [o for o in value if not isinstance(o, dict) or len(str(o.get("url") or "")) <= MAX_URL]
    return fitting[:MAX_OUTPUTS]


def _to_id(value: Any) -> Any:
    """Ids and tokens are strings (numbers are taken as their decimal string); anything else is
    not an id, and makes the answer's shape wrong rather than being turned into text."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("an id must be a string or a number")  # noqa: TRY004 - pydantic wants ValueError
    return str(value)


Ident = Annotated[str, BeforeValidator(_to_id)]

OptInt = Annotated[int | None, BeforeValidator(_to_int)]
OptFloat = Annotated[float | None, BeforeValidator(_to_float)]
OptDecimal = Annotated[Decimal | None, BeforeValidator(_to_decimal)]
Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))]
OptText = Annotated[str | None, BeforeValidator(_to_str)]


class WiroModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ApiError(WiroModel):
    code: OptInt = None
    message: Text = ""


class TaskOutput(WiroModel):
    """One produced file. ``url`` is a public link, available for a limited time."""

    id: Text = ""
    name: Text = ""
    contenttype: Text = ""
    size: OptInt = None
    url: Text = ""
    addedtime: OptInt = None


class Task(WiroModel):
    id: Ident
    uuid: Text = ""
    socketaccesstoken: Ident = ""
    status: Text = ""
    pexit: OptText = None
    debugoutput: Text = ""
    debugerror: Text = ""
    parameters: Any = None
    outputs: Annotated[list[TaskOutput], BeforeValidator(_first_outputs)] = Field(default_factory=list)
    elapsedseconds: OptFloat = None
    cps: OptDecimal = None
    totalcost: OptDecimal = None
    createtime: OptInt = None
    accepttime: OptInt = None
    assigntime: OptInt = None
    starttime: OptInt = None
    endtime: OptInt = None
    canceltime: OptInt = None
    preprocessstarttime: OptInt = None
    preprocessendtime: OptInt = None
    postprocessstarttime: OptInt = None
    postprocessendtime: OptInt = None
    callbackurl: Text = ""
    size: OptInt = None

    @property
    def done(self) -> bool:
        return self.status in TaskStatus.TERMINAL

    @property
    def succeeded(self) -> bool:
        """Ended with its images: ``task_postprocess_end`` with exit code 0, or with outputs and
        no exit code at all (the reference's own Detail example has none)."""
        if self.status != TaskStatus.POSTPROCESS_END:
            return False
        exit_code = (self.pexit or "").strip()
        return exit_code == "0" or (not exit_code and any(o.url for o in self.outputs))

    @property
    def failed(self) -> bool:
        """Ended in failure: ``task_error``, or post-processing that reports a non-zero exit.

        A ``task_postprocess_end`` record with neither an exit code nor outputs is neither
        succeeded nor failed: it is reported as it is.
        """
        exit_code = (self.pexit or "").strip()
        return self.status == TaskStatus.ERROR or (
            self.status == TaskStatus.POSTPROCESS_END and exit_code not in ("", "0")
        )

    @property
    def cancelled(self) -> bool:
        return self.status == TaskStatus.CANCEL

    def failure_reason(self) -> str:
        """Wiro's own words on a failure (on one line, cut to a readable length), or a plain
        description when it gave none."""
        detail = " ".join(self.debugerror.split())
        if detail:
            return detail if len(detail) <= MAX_REASON else detail[: MAX_REASON - 3] + "..."
        if self.status == TaskStatus.ERROR:
            return "Wiro reported task_error without details"
        return f"the task ended with exit code {self.pexit or 'none'}"


class WiroResponse(WiroModel):
    result: bool = False
    errors: list[ApiError] = Field(default_factory=list)


class RunResponse(WiroResponse):
    taskid: Ident = ""
    socketaccesstoken: Ident = ""


class TaskListResponse(WiroResponse):
    """The answer of Task/Detail, Task/Kill and Task/Cancel."""

    total: OptInt = None
    tasklist: list[Task] = Field(default_factory=list)


class RunReceipt(BaseModel):
    """What Run hands back: the task id and the token for Detail, Kill and the socket."""

    model_config = ConfigDict(frozen=True)

    taskid: str
    socketaccesstoken: str


def _price_list(value: Any) -> Any:
    """``dynamicprice`` is a JSON string holding a list; entries that are not prices are dropped."""
    value = _blank_to_none(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and _to_decimal(item.get("price")) is not None]


class PriceRule(WiroModel):
    """One line of a model's price: ``price`` USD per unit of ``priceMethod`` (``cpr`` a request,
    ``cps`` a second, ``cpo`` an output, ``cp-pixel`` a pixel, ...), for the ``inputs`` it names."""

    price: Annotated[Decimal, BeforeValidator(_to_decimal)]
    priceMethod: Text = ""  # noqa: N815 - Wiro's field name
    inputs: dict[str, Any] | None = None


class ToolRecord(WiroModel):
    """A model as Wiro's catalogue (``Tool/Detail``) describes it; only its price is used."""

    dynamicprice: Annotated[list[PriceRule], BeforeValidator(_price_list)] = Field(default_factory=list)
    cps: OptDecimal = None
    approximatelycost: OptDecimal = None


class ToolResponse(WiroResponse):
    tool: list[ToolRecord] = Field(default_factory=list)
