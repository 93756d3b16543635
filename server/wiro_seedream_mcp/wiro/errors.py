"""One typed error hierarchy for everything the Wiro API can answer with."""

from __future__ import annotations

# Wiro's documented error codes that deserve their own advice.
CODE_NOT_FOUND = 1
CODE_CONCURRENCY_LIMIT = 96
CODE_INSUFFICIENT_BALANCE = 97

_ADVICE = {
    CODE_CONCURRENCY_LIMIT: (
        "Your Wiro project already runs as many tasks as its balance allows "
        "(about one per $10, while the balance is at most $250). Wait for a running task to end, "
        "cancel one, or add balance in the Wiro dashboard, then try again."
    ),
    CODE_INSUFFICIENT_BALANCE: (
        "Your Wiro balance is too low for this task. Add balance in the Wiro dashboard, then try again."
    ),
}


class WiroError(Exception):
    """Base of every error from the Wiro layer.

    ``code`` is Wiro's error code when it sent one, ``status`` the HTTP status when there was
    a response, ``taskid`` the task the error concerns when known.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        taskid: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.taskid = taskid
        # Seconds the server asked to wait before trying again (Retry-After), if it did.
        self.retry_after = retry_after
        # A task token found in an answer that was otherwise unusable (Run only).
        self.token: str | None = None

    @property
    def advice(self) -> str | None:
        return _ADVICE.get(self.code) if self.code is not None else None

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"(Wiro error code {self.code})")
        if self.status is not None and self.status != 200:
            parts.append(f"[HTTP {self.status}]")
        text = " ".join(parts)
        return f"{text}. {self.advice}" if self.advice else text


class WiroAPIError(WiroError):
    """Wiro answered ``"result": false`` with an error list."""


class WiroAuthError(WiroAPIError):
    """The credentials or the signature were refused."""


class WiroNotFoundError(WiroAPIError):
    """The task (or endpoint) does not exist, or is not in a state that allows the action."""


class WiroHTTPError(WiroError):
    """An HTTP failure without a usable Wiro answer: a 5xx, or a body that is not Wiro's JSON."""


class WiroConnectionError(WiroError):
    """The request did not get an answer: connection refused, DNS failure, time-out."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        # False only when the request certainly never reached the server.
        self.sent = sent


class WiroRunUnknownError(WiroError):
    """Run's request may have reached Wiro, but no usable answer came back.

    A paid task may exist: this is never a reason to send Run again. ``taskid`` and ``token``
    are set when the broken answer still carried them, so the task can be looked up.
    """

    def __init__(self, message: str, *, taskid: str | None = None, token: str | None = None) -> None:
        super().__init__(message, taskid=taskid)
        self.token = token


def run_may_have_started(exc: WiroError) -> bool:
    """Whether a failed Run may still have started a task.

    Only a refusal Wiro states plainly means no task: an error list with a message on a 4xx or
    200 answer (a validation message, a refused key, a balance or concurrency limit), a 404 for
    the endpoint, or 429 (too many requests, not processed). A request that never left this
    machine started nothing either. Everything else after the request was sent (a 5xx, an answer
    that is not JSON, a lost or timed-out answer, ``result: false`` with no reason) may have.
    """
    if isinstance(exc, WiroRunUnknownError):
        return True
    if isinstance(exc, WiroConnectionError):
        return exc.sent
    if isinstance(exc, WiroAPIError):
        return exc.status is not None and exc.status >= 500
    return exc.status != 429
