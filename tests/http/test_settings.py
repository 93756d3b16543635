"""How ``serve --http`` reads its settings and refuses what must not be served, and how it knows
who is calling."""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from wiro_seedream_mcp import __version__
from wiro_seedream_mcp.cli import main
from wiro_seedream_mcp.config import ConfigError, Settings
from wiro_seedream_mcp.http import HttpSettings, KeyVerifier, TeamVerifier, hash_token
from wiro_seedream_mcp.state import caller_of

from .conftest import Issuer

pytestmark = pytest.mark.anyio


def test_the_mode_follows_from_what_is_set() -> None:
    assert HttpSettings.from_env({}).mode == "none"
    assert HttpSettings.from_env({"WIRO_HTTP_AUTH": "key"}).mode == "key"
    assert HttpSettings.from_env({"WIRO_OAUTH_ISSUER": "https://login.example"}).mode == "team"
    tokens = f"alice={hash_token('t' * 20)}"
    assert HttpSettings.from_env({"WIRO_HTTP_TOKENS": tokens}).mode == "team"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"WIRO_HTTP_AUTH": "open"}, "WIRO_HTTP_AUTH must be one of none, key, team"),
        ({"WIRO_HTTP_AUTH": "team"}, "needs WIRO_OAUTH_ISSUER"),
        ({"WIRO_HTTP_TOKENS": "alice=plain-token"}, "never the tokens themselves"),
        ({"WIRO_HTTP_STATE_KEYS": "short"}, "at least 32 bytes"),
        ({"WIRO_HTTP_MAX_RUNNING": "0"}, "WIRO_HTTP_MAX_RUNNING must be a whole number from 1"),
        ({"WIRO_HTTP_MAX_BODY": "lots"}, "WIRO_HTTP_MAX_BODY must be a whole number"),
        ({"WIRO_HTTP_PUBLIC_URL": "mcp.example.com"}, "WIRO_HTTP_PUBLIC_URL must be the http(s) URL"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)) as refused:
        HttpSettings.from_env(env)
    assert "\n" not in str(refused.value)


def test_a_team_key_server_needs_the_key_and_a_public_url_for_tokens() -> None:
    team = HttpSettings.from_env({"WIRO_OAUTH_ISSUER": "https://login.example"}, host="0.0.0.0")  # noqa: S104
    with pytest.raises(ConfigError, match="set WIRO_API_KEY"):
        team.check(Settings())
    with pytest.raises(ConfigError, match="set WIRO_HTTP_PUBLIC_URL"):
        team.check(Settings(api_key=SecretStr("team-key-123")))
    # On loopback the audience defaults to the local URL.
    local = HttpSettings.from_env({"WIRO_OAUTH_ISSUER": "https://login.example"}, port=9000)
    local.check(Settings(api_key=SecretStr("team-key-123")))
    assert local.resource_url == "http://127.0.0.1:9000/mcp"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])  # noqa: S104
def test_no_auth_is_refused_on_any_address_but_loopback(host: str) -> None:
    with pytest.raises(ConfigError, match=f"refusing to serve on {re.escape(host)} without authentication"):
        HttpSettings.from_env({}, host=host).check(Settings())
    for loopback in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        HttpSettings.from_env({}, host=loopback).check(Settings())


async def test_an_own_key_is_taken_by_shape_and_never_kept_in_the_callers_name() -> None:
    verifier = KeyVerifier()
    token = await verifier.verify_token("abcdefgh1234:secret-5678")
    assert token is not None
    assert "abcdefgh1234" not in token.client_id and "secret" not in token.client_id
    for bad in ("short", "has space inside", "key:", "x" * 300, "ok-key-123:bad secret"):
        assert await verifier.verify_token(bad) is None, bad
    settings = Settings(base_url="https://api.wiro.ai/v1")
    caller = caller_of(settings, token)
    assert caller.scoped and caller.own_key
    assert caller.key is not None and caller.key.get_secret_value() == "abcdefgh1234"
    assert caller.secret is not None and caller.secret.get_secret_value() == "secret-5678"
    assert "abcdefgh1234" not in repr(caller) and "secret-5678" not in repr(caller)
    # The same key with the server's own key: the same owner, so its tasks are the same person's.
    assert caller.owner == caller_of(Settings(api_key=SecretStr("abcdefgh1234")), None).owner


async def test_static_tokens_name_their_user_and_two_users_are_two_owners() -> None:
    http = HttpSettings.from_env(
        {"WIRO_HTTP_TOKENS": f"alice={hash_token('tok-alice-1')},bob={hash_token('tok-bob-22')}"}
    )
    verifier = TeamVerifier(http)
    alice, bob = await verifier.verify_token("tok-alice-1"), await verifier.verify_token("tok-bob-22")
    assert alice is not None and bob is not None
    assert (alice.subject, bob.subject) == ("alice", "bob")
    assert alice.scopes == ["seedream"]
    assert await verifier.verify_token("tok-alice-2") is None
    settings = Settings(api_key=SecretStr("team-key-123"))
    assert caller_of(settings, alice).owner != caller_of(settings, bob).owner
    assert caller_of(settings, alice).key is None  # the team key pays


def test_the_token_command_prints_a_token_and_the_hash_to_keep(capsys: pytest.CaptureFixture[str]) -> None:
    main(["token", "alice"])
    printed = capsys.readouterr().out
    token = re.search(r"\n  (wsm_\S+)\n", printed)
    kept = re.search(r"alice=sha256:([0-9a-f]{64})", printed)
    assert token and kept
    assert hashlib.sha256(token.group(1).encode()).hexdigest() == kept.group(1)
    with pytest.raises(SystemExit, match="a token name is"):
        main(["token", "no spaces allowed"])


def test_serve_offers_http_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--http", "--host", "--port", "--path", "--stateless", "--emulator"):
        assert option in shown, option


async def test_a_token_without_a_subject_is_refused_and_a_client_id_is_never_a_user(issuer: Issuer) -> None:
    from mcp.server.auth.provider import AccessToken

    http = HttpSettings.from_env({"WIRO_OAUTH_ISSUER": issuer.url, "WIRO_API_KEY": "team-key-123"})
    verifier = TeamVerifier(http)
    for blank in ("", "   "):
        assert await verifier.verify_token(issuer.token(blank, audience=http.resource_url)) is None
    victim = await verifier.verify_token(issuer.token("victim", audience=http.resource_url))
    assert victim is not None and victim.subject == "victim"
    # A token whose client is named like another user reaches nothing of that user's.
    settings = Settings(api_key=SecretStr("team-key-123"))
    impostor = AccessToken(token="t", client_id="victim", scopes=[], subject=None, claims={"iss": issuer.url})
    assert caller_of(settings, impostor).owner != caller_of(settings, victim).owner


async def test_credentials_are_checked_once_per_pair_and_only_a_verdict_is_kept() -> None:
    import anyio

    from wiro_seedream_mcp.http.credentials import ACCEPTED_FOR, REFUSED_FOR, CredentialCheck

    now = [0.0]
    asked: list[tuple[str, str | None]] = []
    verdicts = {"good": True, "bad": False, "silent": None}

    class Counting(CredentialCheck):
        async def _ask(self, key: str, secret: str | None) -> bool | None:
            asked.append((key, secret))
            await anyio.sleep(0.01)
            return verdicts[key]

    check = Counting("https://api.wiro.ai/v1", clock=lambda: now[0])
    async with anyio.create_task_group() as tg:  # ten requests at once ask Wiro once
        for _ in range(10):
            tg.start_soon(check, "good", "s")
    assert asked == [("good", "s")]
    assert await check("good", "s") is True and await check("good", "other") is True
    assert await check("bad", None) is False and await check("bad", None) is False
    assert await check("silent", None) is False and await check("silent", None) is False
    assert asked == [("good", "s"), ("good", "other"), ("bad", None), ("silent", None), ("silent", None)]
    now[0] += REFUSED_FOR + 1  # a refusal is asked again sooner than an acceptance
    await check("bad", None)
    await check("good", "s")
    assert asked[5:] == [("bad", None)]
    now[0] += ACCEPTED_FOR
    await check("good", "s")
    assert asked[6:] == [("good", "s")]
    assert all("good" not in digest for digest in check._known)  # hashes, never the key


async def test_a_key_wiro_refuses_is_no_caller() -> None:
    asked: list[tuple[str, str | None]] = []

    async def accept_one(key: str, secret: str | None) -> bool:
        asked.append((key, secret))
        return (key, secret) == ("abcdefgh1234", "secret-5678")

    verifier = KeyVerifier(accept_one)
    assert await verifier.verify_token("abcdefgh1234:secret-5678") is not None
    assert await verifier.verify_token("abcdefgh1234:wrong-secret") is None
    assert await verifier.verify_token("abcdefgh1234") is None
    assert asked == [
        ("abcdefgh1234", "secret-5678"),
        ("abcdefgh1234", "wrong-secret"),
        ("abcdefgh1234", None),
    ]


async def test_health_says_not_ready_while_the_shared_journal_cannot_be_read(tmp_path: Path) -> None:
    """A load balancer keeps sending to a replica whose PostgreSQL is gone unless /healthz says so."""
    import socket

    from wiro_seedream_mcp.http import health
    from wiro_seedream_mcp.journal import Journal, PostgresJournal
    from wiro_seedream_mcp.state import Drain

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gone = PostgresJournal(f"postgresql://wiro@127.0.0.1:{port}/wiro")
    local = Journal(tmp_path)
    drain = Drain()
    assert await health(local, drain) == (200, {"status": "ok", "version": __version__})
    assert (await health(gone, drain))[0] == 503
    assert (await health(gone, drain))[1]["status"] == "journal unavailable"
    drain.start()
    assert (await health(local, drain))[1]["status"] == "draining"
    local.close()


async def test_keys_are_fetched_once_for_many_at_once_and_not_again_for_made_up_kids(issuer: Issuer) -> None:
    import anyio
    import jwt

    http = HttpSettings.from_env({"WIRO_OAUTH_ISSUER": issuer.url, "WIRO_API_KEY": "team-key-123"})
    verifier = TeamVerifier(http)
    good = issuer.token("alice", audience=http.resource_url)
    before = issuer.jwks_fetches
    found: list[object] = []

    async def verify(token: str) -> None:
        found.append(await verifier.verify_token(token))

    async with anyio.create_task_group() as tg:  # a cold cache, ten requests at once
        for _ in range(10):
            tg.start_soon(verify, good)
    assert all(token is not None for token in found)
    assert issuer.jwks_fetches - before == 1
    # Thirty forged tokens naming keys nobody published: refused, with no fetch each.
    for n in range(30):
        forged = jwt.encode({"sub": "x"}, issuer.key, algorithm="RS256", headers={"kid": f"made-up-{n}"})
        assert await verifier.verify_token(forged) is None
    assert issuer.jwks_fetches - before == 1


class _Publisher(BaseHTTPRequestHandler):
    """A JWKS that never ends well: one byte a while (``/slow``) or megabytes (``/huge``)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(b'{"keys": [' + b" " * 64)
            for _ in range(200 if self.path == "/slow" else 0):
                self.wfile.flush()
                threading.Event().wait(0.1)
                self.wfile.write(b" ")
            if self.path == "/huge":
                for _ in range(64):
                    self.wfile.write(b" " * 65536)
        except OSError:
            return  # the server stopped reading: what it should do

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("kind", ["slow", "huge"])
async def test_a_slow_or_huge_jwks_is_given_up_on(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """A JWKS trickled a byte at a time (20 s in all) is given up on at the fetch's deadline; one
    past the size cap is not read on."""
    import anyio

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Publisher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        http = HttpSettings.from_env({"WIRO_OAUTH_ISSUER": base, "WIRO_OAUTH_JWKS_URL": f"{base}/{kind}"})
        verifier = TeamVerifier(http)
        verifier.JWKS_DEADLINE = 1.0
        token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"
        with anyio.fail_after(8):  # the trickle alone would take 20 s
            assert await verifier.verify_token(token) is None
    finally:
        server.shutdown()
    said = caplog.text
    assert "keys could not be fetched" in said
    if kind == "huge":
        assert f"more than {TeamVerifier.JWKS_MAX_BYTES} bytes" in said
