"""A local stand-in for the Wiro API, for this one model.

It is a real HTTP server on 127.0.0.1 that answers like Wiro does:

* ``POST /v1/Run/bytedance/text-to-image-seedream-v3`` validates the inputs like Wiro and
  starts a task;
* ``POST /v1/Task/Detail`` / ``Task/Kill`` / ``Task/Cancel`` look after tasks;
* ``GET /cdn/<uuid>/0.png`` serves a real PNG of the requested size;
* ``/v1/socket`` is the task socket: after ``{"type": "task_info", "tasktoken": ...}`` it
  pushes ``{type, id, tasktoken, message, result}`` frames as the task moves, like
  ``wss://socket.wiro.ai/v1`` (``socket=False`` turns it off).

Every request is authenticated like a Wiro project: signature projects need ``x-api-key``,
``x-nonce`` and ``x-signature`` (and a nonce is never accepted twice), key-only projects
``x-api-key`` alone. The signature check here is its own HMAC construction from
``hashlib``, not the client's signer, so a bug in one cannot hide the other.

Tasks walk through the documented statuses on a clock (:class:`Timings`). A prompt that
contains ``[emulator:fail]`` ends with a non-zero exit and no output; one that contains
``[emulator:error]`` ends ``task_error`` before it runs.

Every request is recorded in :attr:`WiroEmulator.requests`, for tests, and
:meth:`WiroEmulator.inject` makes chosen requests fail the way a network or a gateway does.

The package shares nothing with the client (:mod:`wiro_seedream_mcp.wiro`) it checks: its facts
about Wiro are its own copy (:mod:`.reference`).
"""

from __future__ import annotations

from .project import WiroEmulator
from .reference import COST_PER_SECOND, DEFAULT_KEY, DEFAULT_SECRET, ERROR_MARKER, FAIL_MARKER
from .running import EmulatorServer, serve_forever
from .tasks import EmulatedTask, Fault, Project, RecordedRequest, Timings

__all__ = [
    "COST_PER_SECOND",
    "DEFAULT_KEY",
    "DEFAULT_SECRET",
    "ERROR_MARKER",
    "FAIL_MARKER",
    "EmulatedTask",
    "EmulatorServer",
    "Fault",
    "Project",
    "RecordedRequest",
    "Timings",
    "WiroEmulator",
    "serve_forever",
]
