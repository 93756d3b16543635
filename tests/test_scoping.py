"""Whose tasks a caller reaches, decided in this process (the HTTP tests check the same from outside,
through a server in a child process): the owner check before Wiro is asked anything, and the
caller an access token stands for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import SecretStr

from wiro_seedream_mcp.config import Settings
from wiro_seedream_mcp.journal import Journal, JournalEntry, JournalUnavailableError
from wiro_seedream_mcp.state import OWN_KEY_ISSUER, AppState, CallSlot, call_slot, caller_of
from wiro_seedream_mcp.tools.common import reach
from wiro_seedream_mcp.tools.confirm import StartTask, go_ahead

pytestmark = pytest.mark.anyio

TEAM = Settings(api_key=SecretStr("team-key-000000"), base_url="http://127.0.0.1:9/v1")


def team_token(subject: str) -> AccessToken:
    return AccessToken(
        token="jwt", client_id="a-client", scopes=["seedream"], subject=subject, claims={"iss": "https://id"}
    )


SECRET = "s3cret-000"


def key_token(key: str) -> AccessToken:
    return AccessToken(token=f"{key}:{SECRET}", client_id=key, scopes=[], claims={"iss": OWN_KEY_ISSUER})


@contextmanager
def calling_as(token: AccessToken | None) -> Iterator[None]:
    reset = auth_context_var.set(AuthenticatedUser(token) if token else None)
    try:
        yield
    finally:
        auth_context_var.reset(reset)


class Unreadable(Journal):
    async def get(self, taskid: str, owner: str | None = None) -> JournalEntry | None:
        raise JournalUnavailableError("the task journal (here) cannot be read")


@pytest.fixture
async def journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path)
    alice = caller_of(TEAM, team_token("alice")).owner
    await journal.accepted("900", "tok-900", {"prompt": "alice's"}, alice)
    return journal


async def test_a_team_user_reaches_only_their_own_journaled_tasks(journal: Journal) -> None:
    state = AppState(TEAM, journal)
    with calling_as(team_token("alice")):
        await reach(state, "900")
        await reach(state, None, "tok-900")
    with calling_as(team_token("bob")), pytest.raises(ToolError, match="not one of yours"):
        await reach(state, "900")
    # All team tasks are on the one key, so one the journal does not know is nobody's to look up.
    with calling_as(team_token("alice")), pytest.raises(ToolError, match="not one of yours"):
        await reach(state, "4242")


async def test_a_team_user_is_refused_when_the_journal_cannot_say_whose_task_it_is(tmp_path: Path) -> None:
    state = AppState(TEAM, Unreadable(tmp_path))
    with calling_as(team_token("alice")), pytest.raises(ToolError, match="cannot be checked"):
        await reach(state, "900")


async def test_an_own_key_reaches_what_no_one_else_has_journaled(journal: Journal, tmp_path: Path) -> None:
    state = AppState(TEAM, journal)
    with calling_as(key_token("carols-key-0000")):
        await reach(state, "4242")  # Wiro answers for that key's project alone
        with pytest.raises(ToolError, match="not one of yours"):
            await reach(state, "900")  # journaled under someone else
    with calling_as(key_token("carols-key-0000")):
        await reach(AppState(TEAM, Unreadable(tmp_path)), "4242")


async def test_without_a_token_nothing_is_scoped(journal: Journal) -> None:
    with calling_as(None):
        await reach(AppState(TEAM, journal), "4242")


def test_the_caller_a_token_stands_for() -> None:
    alice, bob = caller_of(TEAM, team_token("alice")), caller_of(TEAM, team_token("bob"))
    assert alice.scoped and not alice.own_key
    assert alice.owner != bob.owner
    # The subject is the user, never the client: a client named "alice" is not alice.
    named = AccessToken(
        token="jwt", client_id="alice", scopes=[], subject="mallory", claims={"iss": "https://id"}
    )
    assert caller_of(TEAM, named).owner != alice.owner
    # Another issuer's "alice" is another person.
    other = team_token("alice").model_copy(update={"claims": {"iss": "https://elsewhere"}})
    assert caller_of(TEAM, other).owner != alice.owner
    carol = caller_of(TEAM, key_token("carols-key-0000"))
    assert carol.scoped and carol.own_key
    assert carol.key is not None and carol.key.get_secret_value() == "carols-key-0000"
    assert carol.secret is not None and carol.secret.get_secret_value() == SECRET
    assert carol.owner != caller_of(TEAM, key_token("daves-key-00000")).owner
    server = caller_of(TEAM, None)
    assert not server.scoped and not server.own_key


def holding(slot: CallSlot) -> bool:
    return slot.held


async def test_a_call_asked_to_confirm_takes_its_running_slot_back_or_starts_nothing(tmp_path: Path) -> None:
    """The slot let go while the person was asked is taken back before the task starts; when the
    caller's other calls took every slot meanwhile, nothing starts, and the refusal says why."""
    journal = Journal(tmp_path)
    yes: AcceptedElicitation[StartTask] = AcceptedElicitation(data=StartTask(start=True))
    slot = CallSlot(journal, "alice", limit=1, ttl=60)
    handed = call_slot.set(slot)
    try:
        await go_ahead(yes)  # the slot is free: taken back
        assert holding(slot)
        await slot.release()
        other = CallSlot(journal, "alice", limit=1, ttl=60)
        assert await other.take()  # another call of alice's took the only slot meanwhile
        with pytest.raises(ToolError) as refused:
            await go_ahead(yes)
        assert str(refused.value) == (
            "this caller already has 1 generate_image call(s) running, the most allowed "
            "(WIRO_HTTP_MAX_RUNNING); nothing was started: try again when one ends"
        )
        assert not holding(slot)
        # Another caller's slots are theirs: bob's call goes ahead.
        bob = CallSlot(journal, "bob", limit=1, ttl=60)
        call_slot.set(bob)
        await go_ahead(yes)
        assert holding(bob)
    finally:
        call_slot.reset(handed)
    with pytest.raises(ToolError, match="did not confirm"):
        await go_ahead(AcceptedElicitation(data=StartTask(start=False)))
