"""``serve --http``'s settings: where it listens, whom it lets in, its limits; and what it refuses
to serve."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from ..config import ConfigError, Settings

Mode = Literal["none", "key", "team"]
MODES: tuple[Mode, ...] = ("none", "key", "team")
DEFAULT_PATH = "/mcp"
DEFAULT_PORT = 8000
# A tools/call with the longest prompt is a few KiB; nothing a client sends comes near this.
DEFAULT_MAX_BODY = 256 * 1024
DEFAULT_MAX_RUNNING = 4
# Sessions one caller may hold open, and how long an unused one lives (the SDK's own default is
# 30 minutes, long enough for one caller's abandoned sessions to pile up).
DEFAULT_MAX_SESSIONS = 32
DEFAULT_SESSION_IDLE = 600
# A request's head must arrive this soon after the connection opens (or its last answer), its
# body this soon after the head; past this many open connections a new one is refused.
DEFAULT_HEAD_TIMEOUT = 10
DEFAULT_BODY_TIMEOUT = 30
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_SCOPE = "seedream"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def _number(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}; got {raw!r}")
    return value


def _tokens(raw: str | None) -> tuple[tuple[str, str], ...]:
    """``name=sha256:HEX`` pairs, comma-separated."""
    found = []
    for item in _list(raw):
        name, _, digest = item.partition("=")
        if not name or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ConfigError(
                "WIRO_HTTP_TOKENS must be name=sha256:<64 hex digits> pairs separated by commas (the "
                "hashes `wiro-seedream-mcp token NAME` prints), never the tokens themselves"
            )
        found.append((name, digest.removeprefix("sha256:")))
    return tuple(found)


@dataclass(frozen=True)
class HttpSettings:
    """How ``serve --http`` listens and whom it lets in; secrets never in ``repr``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    path: str = DEFAULT_PATH
    mode: Mode = "none"
    # The URL callers reach this endpoint at: the OAuth resource (audience) and the Host allowed.
    public_url: str | None = None
    issuer: str | None = None
    jwks_url: str | None = None
    scopes: tuple[str, ...] = (DEFAULT_SCOPE,)
    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body: int = DEFAULT_MAX_BODY
    max_running: int = DEFAULT_MAX_RUNNING
    max_sessions: int = DEFAULT_MAX_SESSIONS
    session_idle: int = DEFAULT_SESSION_IDLE
    head_timeout: int = DEFAULT_HEAD_TIMEOUT
    body_timeout: int = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    stateless: bool = False
    state_keys: tuple[SecretStr, ...] = field(default=(), repr=False)

    @property
    def resource_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        path: str = DEFAULT_PATH,
        stateless: bool = False,
    ) -> HttpSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        tokens = _tokens(get("WIRO_HTTP_TOKENS"))
        issuer = get("WIRO_OAUTH_ISSUER")
        raw_mode = (get("WIRO_HTTP_AUTH") or ("team" if tokens or issuer else "none")).lower()
        if raw_mode not in MODES:
            raise ConfigError(f"WIRO_HTTP_AUTH must be one of {', '.join(MODES)}; got {raw_mode!r}")
        mode: Mode = raw_mode
        if mode == "team" and not (tokens or issuer):
            raise ConfigError(
                "WIRO_HTTP_AUTH=team needs WIRO_OAUTH_ISSUER (an OAuth authorization server) or "
                "WIRO_HTTP_TOKENS (hashed static tokens) to know who is calling"
            )
        if not path.startswith("/"):
            raise ConfigError(f"--path must start with /; got {path!r}")
        public = get("WIRO_HTTP_PUBLIC_URL")
        if public is not None and urlsplit(public).scheme not in ("http", "https"):
            raise ConfigError(
                f"WIRO_HTTP_PUBLIC_URL must be the http(s) URL of this endpoint; got {public!r}"
            )
        keys = tuple(SecretStr(k) for k in _list(get("WIRO_HTTP_STATE_KEYS")))
        if any(len(k.get_secret_value().encode()) < 32 for k in keys):
            raise ConfigError(
                "WIRO_HTTP_STATE_KEYS must be secrets of at least 32 bytes, separated by commas (the same "
                "on every replica; the first seals, all unseal)"
            )
        return cls(
            host=host,
            port=port,
            path=path,
            mode=mode,
            public_url=public,
            issuer=issuer,
            jwks_url=get("WIRO_OAUTH_JWKS_URL"),
            scopes=_list(get("WIRO_OAUTH_SCOPES")) or (DEFAULT_SCOPE,),
            tokens=tokens,
            allowed_hosts=_list(get("WIRO_HTTP_ALLOWED_HOSTS")),
            allowed_origins=_list(get("WIRO_HTTP_ALLOWED_ORIGINS")),
            max_body=_number(
                "WIRO_HTTP_MAX_BODY", get("WIRO_HTTP_MAX_BODY"), DEFAULT_MAX_BODY, 1024, 64 << 20
            ),
            max_running=_number(
                "WIRO_HTTP_MAX_RUNNING", get("WIRO_HTTP_MAX_RUNNING"), DEFAULT_MAX_RUNNING, 1, 10_000
            ),
            max_sessions=_number(
                "WIRO_HTTP_MAX_SESSIONS", get("WIRO_HTTP_MAX_SESSIONS"), DEFAULT_MAX_SESSIONS, 1, 10_000
            ),
            session_idle=_number(
                "WIRO_HTTP_SESSION_IDLE", get("WIRO_HTTP_SESSION_IDLE"), DEFAULT_SESSION_IDLE, 10, 86_400
            ),
            head_timeout=_number(
                "WIRO_HTTP_HEAD_TIMEOUT", get("WIRO_HTTP_HEAD_TIMEOUT"), DEFAULT_HEAD_TIMEOUT, 1, 600
            ),
            body_timeout=_number(
                "WIRO_HTTP_BODY_TIMEOUT", get("WIRO_HTTP_BODY_TIMEOUT"), DEFAULT_BODY_TIMEOUT, 1, 3600
            ),
            max_connections=_number(
                "WIRO_HTTP_MAX_CONNECTIONS",
                get("WIRO_HTTP_MAX_CONNECTIONS"),
                DEFAULT_MAX_CONNECTIONS,
                8,
                1_000_000,
            ),
            stateless=stateless or (get("WIRO_HTTP_STATELESS") or "").lower() in ("1", "true", "yes"),
            state_keys=keys,
        )

    def check(self, settings: Settings) -> None:
        """Refuse what must not be served, with what to do instead."""
        if self.mode == "none" and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve on {self.host} without authentication: anyone who reaches it could "
                "spend the key's money. Set WIRO_HTTP_AUTH=key (each caller sends its own Wiro key as "
                "a bearer token), or keep WIRO_API_KEY and set WIRO_OAUTH_ISSUER or WIRO_HTTP_TOKENS "
                "(WIRO_HTTP_AUTH=team); or listen on 127.0.0.1"
            )
        if self.mode == "team" and not settings.has_credentials:
            raise ConfigError(
                "WIRO_HTTP_AUTH=team pays with the server's key: set WIRO_API_KEY (and WIRO_API_SECRET)"
            )
        if self.mode == "team" and self.issuer and not self.public_url and not is_loopback(self.host):
            raise ConfigError(
                "with WIRO_OAUTH_ISSUER, set WIRO_HTTP_PUBLIC_URL to the https URL callers use for this "
                "endpoint (e.g. https://mcp.example.com/mcp): tokens must name it as their audience"
            )
