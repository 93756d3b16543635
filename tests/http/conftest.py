"""Servers started with ``serve --http`` in child processes, an OAuth issuer on loopback, and MCP
clients that reach them over real HTTP with the SDK's streamable-HTTP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from wiro_seedream_mcp.emulator import EmulatorServer, Project, Timings

from ..conftest import API_KEY, API_SECRET
from ..spawn import server_command

ROOT = Path(__file__).resolve().parents[2]
# A second project on the same emulator: another person with a key of their own.
OTHER_KEY = "other-key-9876543210"
OTHER_SECRET = "other-secret-zyxwvutsrq"
RUN = "/Run/bytedance/text-to-image-seedream-v3"
SCOPE = "seedream"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HttpServer:
    """``wiro-seedream-mcp serve --http`` in a child process, on a free loopback port."""

    env: dict[str, str]
    log: Path
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/mcp"

    def start(self) -> HttpServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                server_command("serve", "--http", "--port", str(self.port), *self.args),
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 30
        # One client for the polling: a new one per look costs a TLS context (~25 ms of CPU).
        with httpx.Client(timeout=1) as http:
            while True:
                assert self.process.poll() is None, f"the server exited: {self.log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "the server did not answer /healthz"
                try:
                    if http.get(f"{self.origin}/healthz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def http_emulator(emulator_factory: Callable[..., EmulatorServer]) -> Callable[..., EmulatorServer]:
    """The live emulator with two projects (two people's keys) and the given timings."""

    def start(timings: Timings | None = None, **options: Any) -> EmulatorServer:
        return emulator_factory(
            timings=timings or Timings(queue=0.05, prepare=0.05, generate=0.3, postprocess=0.05),
            others=[Project(api_key=OTHER_KEY, api_secret=OTHER_SECRET)],
            **options,
        )

    return start


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., HttpServer]]:
    """Start servers with this environment on top of the emulator's address; all stopped after."""
    started: list[HttpServer] = []

    def start(emulator: EmulatorServer | None = None, *args: str, port: int = 0, **env: str) -> HttpServer:
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "WIRO_STATE_DIR": str(tmp_path / "state"),
            "WIRO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        if emulator is not None:
            environ["WIRO_API_BASE_URL"] = emulator.base_url
        environ |= env
        server = HttpServer(environ, tmp_path / f"server-{len(started)}.log", args, port=port or free_port())
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@asynccontextmanager
async def remote(
    url: str, bearer: str | None = None, *, terminate: bool = True, **options: Any
) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP, sending ``Authorization: Bearer <bearer>``; ``terminate``
    False leaves the session be on closing (the server is gone)."""
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60.0)) as http,
        Client(
            streamable_http_client(url, http_client=http, terminate_on_close=terminate), **options
        ) as client,
    ):
        yield client


def post(url: str, body: dict[str, Any], bearer: str | None = None, **headers: str) -> httpx.Response:
    """One raw JSON-RPC POST, as a 2026 client sends it (with the envelope of ``_meta``)."""
    envelope = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {**body, "params": {**body.get("params", {}), "_meta": envelope}}
    sent = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": body["method"],
        **headers,
    }
    if bearer:
        sent["authorization"] = f"Bearer {bearer}"
    return httpx.post(url, content=json.dumps(body), headers=sent, timeout=30)


# -- an OAuth authorization server, as far as a resource server sees one ---------------------


@dataclass
class Issuer:
    """An issuer on loopback publishing its metadata and JWKS, and minting access tokens."""

    url: str
    key: rsa.RSAPrivateKey
    kid: str = "test-key-1"
    jwks_fetches: int = 0

    def token(
        self,
        subject: str = "alice",
        *,
        audience: str,
        scope: str = SCOPE,
        expires_in: float = 300,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer or self.url,
            "sub": subject,
            "aud": audience,
            "scope": scope,
            "iat": now,
            "exp": now + int(expires_in),
            "client_id": "test-client",
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    found = Issuer(url, key)
    jwks = {"keys": [{**public, "kid": found.kid, "use": "sig", "alg": "RS256"}]}
    metadata = {
        "issuer": url,
        "authorization_endpoint": f"{url}/authorize",
        "token_endpoint": f"{url}/token",
        "jwks_uri": f"{url}/jwks.json",
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body: dict[str, Any]
            if self.path == "/jwks.json":
                found.jwks_fetches += 1
                body = jwks
            elif self.path == "/.well-known/oauth-authorization-server":
                body = metadata
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()


def own_key(key: str = API_KEY, secret: str | None = API_SECRET) -> str:
    return f"{key}:{secret}" if secret else key
