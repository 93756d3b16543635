"""Configuration: the environment, read and validated once into one typed object.

Secrets are held as :class:`pydantic.SecretStr`, so ``repr``, ``str`` and logging of a
:class:`Settings` never show them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    import httpx2 as httpx

    from .wiro.client import WiroClient

DEFAULT_BASE_URL = "https://api.wiro.ai/v1"
WIRO_API_HOST = "api.wiro.ai"
WIRO_SOCKET_URL = "wss://socket.wiro.ai/v1"
_OFF = ("off", "none", "no", "false", "0", "disabled")
DEFAULT_PREVIEW_SIZE = 512
PREVIEW_SIZE_RANGE = (64, 1024)
APP_NAME = "wiro-seedream-mcp"
DEFAULT_WAIT_TIMEOUT = 50.0
# Every call answers within this many seconds past what it was asked to wait for
# (generate_image: WIRO_WAIT_TIMEOUT; get_task: its wait; the other tools and resources: nothing),
# whatever the network does. A download still running then is left, with its URL in a warning.
ANSWER_MARGIN = 8.0
# Hosts give up on a tool call after about a minute; an hour is the most a waiting
# call may ever be told to wait.
MAX_WAIT_TIMEOUT = 3600.0
# A generate_image call with the same inputs as a task started this long ago or less returns that
# task instead of paying for another: a client that gave up on its own time limit and retries.
DEFAULT_REUSE_WINDOW = 600.0
MAX_REUSE_WINDOW = 86_400.0

# What a bundle host passes for a user_config field that was left blank.
_UNEXPANDED = re.compile(r"^\$\{[^}]*\}$")


class ConfigError(ValueError):
    """The environment holds a value that cannot be used; the message says which and why."""


def _clean(value: str | None) -> str | None:
    """An unset, blank or unexpanded ``${...}`` value counts as unset."""
    if value is None:
        return None
    value = value.strip()
    if not value or _UNEXPANDED.match(value):
        return None
    return value


@dataclass(frozen=True)
class Settings:
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT
    # Where task events are pushed; None = follow tasks by polling only.
    socket_url: str | None = WIRO_SOCKET_URL
    # Where finished images are saved; None = not saved.
    output_dir: Path | None = None
    # Longest side of the inline preview in pixels; None = no preview.
    preview_size: int | None = DEFAULT_PREVIEW_SIZE
    # Folder of the task journal; None = a journal in memory only (tests, throwaway servers).
    state_dir: Path | None = None
    # A PostgreSQL journal instead (replicas of `serve --http`): postgresql://user:password@host/db.
    journal_url: SecretStr | None = None
    # Host names images may also be fetched from, beside Wiro's CDN and the API's own origin.
    download_hosts: tuple[str, ...] = ()
    # Seconds within which the same inputs return the task already started; 0 = always a new task.
    reuse_window: float = DEFAULT_REUSE_WINDOW
    # The most this key may spend a day (local midnight to midnight), and on one task, in USD.
    budget_usd: float | None = None
    max_task_usd: float | None = None
    # When to ask the person before a task starts: None = never, 0 = always, an amount = when the
    # task's estimate or today's total with it would pass it.
    confirm_above: float | None = None
    # How far past its wait any call may run before it answers anyway (tests shorten it).
    answer_margin: float = ANSWER_MARGIN
    # Whether a cancelled generate_image call stops its task (for hosts whose Stop button is the
    # only way a person stops one): off, a paid task is stopped only by kill_task/cancel_task.
    stop_on_cancel: bool = False
    # Whether results carry each image as a resource_link block (off: for clients that reject the
    # block; the link is still in the text and in structuredContent).
    resource_links: bool = True
    # Names of variables that were set but ignored, for `doctor` and the logs.
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def has_credentials(self) -> bool:
        return self.api_key is not None

    @property
    def signed(self) -> bool:
        """Signature mode (key + nonce + HMAC) when a secret is set, key-only otherwise."""
        return self.api_secret is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        notes: list[str] = []
        key = _clean(env.get("WIRO_API_KEY"))
        secret = _clean(env.get("WIRO_API_SECRET"))
        if secret is not None and key is None:
            notes.append("WIRO_API_SECRET is set but WIRO_API_KEY is not: the secret is unused")
        base_url = _base_url(_clean(env.get("WIRO_API_BASE_URL")))
        return cls(
            api_key=SecretStr(key) if key else None,
            api_secret=SecretStr(secret) if secret else None,
            base_url=base_url,
            wait_timeout=_wait_timeout(_clean(env.get("WIRO_WAIT_TIMEOUT"))),
            socket_url=_socket_url(_clean(env.get("WIRO_SOCKET_URL")), base_url),
            output_dir=_directory("WIRO_OUTPUT_DIR", _clean(env.get("WIRO_OUTPUT_DIR"))),
            preview_size=_preview(_clean(env.get("WIRO_PREVIEW"))),
            state_dir=_directory("WIRO_STATE_DIR", _clean(env.get("WIRO_STATE_DIR"))) or default_state_dir(),
            journal_url=_journal_url(_clean(env.get("WIRO_JOURNAL_URL"))),
            download_hosts=_hosts(_clean(env.get("WIRO_DOWNLOAD_HOSTS"))),
            reuse_window=_reuse_window(_clean(env.get("WIRO_REUSE_WINDOW"))),
            budget_usd=_dollars("WIRO_BUDGET_USD", _clean(env.get("WIRO_BUDGET_USD"))),
            max_task_usd=_dollars("WIRO_MAX_TASK_USD", _clean(env.get("WIRO_MAX_TASK_USD"))),
            confirm_above=_confirm(_clean(env.get("WIRO_CONFIRM"))),
            stop_on_cancel=_switch("WIRO_STOP_ON_CANCEL", _clean(env.get("WIRO_STOP_ON_CANCEL"))),
            resource_links=_switch("WIRO_RESOURCE_LINKS", _clean(env.get("WIRO_RESOURCE_LINKS")) or "on"),
            notes=tuple(notes),
        )

    def missing_credentials_message(self) -> str:
        return (
            "Wiro credentials are not configured: set WIRO_API_KEY (and WIRO_API_SECRET for a project "
            "that uses signature authentication) in the environment this MCP server is started with, "
            "then restart it. Keys are made in the Wiro dashboard under Projects."
        )


def _base_url(raw: str | None) -> str:
    if raw is None:
        return DEFAULT_BASE_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = "a value with credentials in it" if "@" in raw else repr(raw)
        raise ConfigError(f"WIRO_API_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL}; got {shown}")
    if parts.query or parts.fragment:
        raise ConfigError("WIRO_API_BASE_URL must not carry a query string or fragment")
    if parts.username or parts.password:
        raise ConfigError(
            "WIRO_API_BASE_URL must not carry credentials: use WIRO_API_KEY and WIRO_API_SECRET"
        )
    return raw.rstrip("/")


def _journal_url(raw: str | None) -> SecretStr | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.query):
        raise ConfigError(
            "WIRO_JOURNAL_URL must be a PostgreSQL URL such as postgresql://user:password@db.example:5432/wiro"
            f" (unset, the journal is a SQLite file in WIRO_STATE_DIR); got a {parts.scheme or 'bare'} value"
        )
    return SecretStr(raw)


def _wait_timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_WAIT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"WIRO_WAIT_TIMEOUT must be a number of seconds; got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or value > MAX_WAIT_TIMEOUT:
        raise ConfigError(
            f"WIRO_WAIT_TIMEOUT must be between 0 and {MAX_WAIT_TIMEOUT:g} seconds; got {raw!r}"
        )
    return value


def _switch(name: str, raw: str | None) -> bool:
    """``on`` or ``off`` (also true/false, yes/no, 1/0); off when unset."""
    if raw is None or raw.lower() in _OFF:
        return False
    if raw.lower() in ("on", "true", "yes", "1"):
        return True
    raise ConfigError(f"{name} must be on or off; got {raw!r}")


def _dollars(name: str, raw: str | None) -> float | None:
    """An amount in US dollars, above zero; None when unset."""
    if raw is None:
        return None
    try:
        value = float(raw.removeprefix("$"))
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be an amount of US dollars above 0, such as 5 or 0.50; got {raw!r}")
    return value


def _confirm(raw: str | None) -> float | None:
    if raw is None or raw.lower() == "never":
        return None
    if raw.lower() == "always":
        return 0.0
    try:
        return _dollars("WIRO_CONFIRM", raw)
    except ConfigError:
        raise ConfigError(
            f"WIRO_CONFIRM must be 'never', 'always' or an amount of US dollars above 0; got {raw!r}"
        ) from None


def _reuse_window(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_REUSE_WINDOW
    if raw.lower() in _OFF:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or not 0 <= value <= MAX_REUSE_WINDOW:
        raise ConfigError(
            f"WIRO_REUSE_WINDOW must be 'off' or a number of seconds from 0 to {MAX_REUSE_WINDOW:g}; "
            f"got {raw!r}"
        )
    return value


def default_socket_url(base_url: str) -> str:
    """Wiro's own socket for Wiro's API; for any other base (the emulator, a proxy) its ``/socket``."""
    parts = urlsplit(base_url)
    if parts.hostname == WIRO_API_HOST:
        return WIRO_SOCKET_URL
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/socket"


def _socket_url(raw: str | None, base_url: str) -> str | None:
    if raw is None:
        return default_socket_url(base_url)
    if raw.lower() in _OFF:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(
            f"WIRO_SOCKET_URL must be a ws:// or wss:// URL such as {WIRO_SOCKET_URL}, or 'off'; got {raw!r}"
        )
    return raw


def default_state_dir() -> Path:
    """The user's data folder for this program, e.g. ~/.local/share/wiro-seedream-mcp on Linux."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def _directory(name: str, raw: str | None) -> Path | None:
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ConfigError(
            f"{name} must be an absolute folder path (a host starts servers in a folder of its own "
            f"choosing); got {raw!r}"
        )
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} must be a folder; {raw!r} is a file")
    return path


_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _hosts(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    hosts = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for host in hosts:
        if not _HOST.match(host):
            raise ConfigError(
                "WIRO_DOWNLOAD_HOSTS must be host names separated by commas, such as "
                f"images.example.com or *.example.com; got {host[:80]!r}"
            )
    return hosts


def _preview(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_PREVIEW_SIZE
    if raw.lower() in _OFF:
        return None
    low, high = PREVIEW_SIZE_RANGE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not low <= size <= high:
        raise ConfigError(
            f"WIRO_PREVIEW must be 'off' or the preview's longest side in pixels, {low} to {high}; "
            f"got {raw!r}"
        )
    return size


def wiro_client(http: httpx.AsyncClient, settings: Settings) -> WiroClient | None:
    """The Wiro client the settings call for; None without an API key."""
    if settings.api_key is None:
        return None
    return signed_client(http, settings.base_url, settings.api_key, settings.api_secret)


def signed_client(
    http: httpx.AsyncClient, base_url: str, key: SecretStr, secret: SecretStr | None
) -> WiroClient:
    """A Wiro client signing with this key (and secret), on a shared HTTP client: making one
    costs next to nothing, so one may be made for a single request's credentials."""
    from .wiro.client import WiroClient
    from .wiro.signing import WiroAuth

    return WiroClient(http, base_url=base_url, auth=WiroAuth(key, secret))
