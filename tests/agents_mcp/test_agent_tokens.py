"""federation.agent_tokens: only hashes stored, expiry, revocation, agent binding."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from federation import agent_tokens as at
from federation.errors import AuthenticationError, NotFoundError


@pytest.fixture
def node(tmp_path):
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "triage.json").write_text("{}")
    (tmp_path / "agents" / "other.json").write_text("{}")
    return tmp_path


def test_only_the_hash_is_stored_and_the_token_verifies(node):
    tok, rec = at.mint(node, "triage", label="claude desktop")
    stored = (node / at.TOKEN_FILE).read_text()
    secret = tok.split(".", 1)[1]
    assert secret not in stored and rec.secret_sha256 in stored
    assert (node / at.TOKEN_FILE).stat().st_mode & 0o077 == 0
    assert at.verify(node, tok, agent="triage").id == rec.id
    assert "secret_sha256" not in json.dumps(at.list_tokens(node)[0].public())


def test_wrong_agent_secret_expiry_and_revocation_are_refused(node):
    tok, rec = at.mint(node, "triage")
    with pytest.raises(AuthenticationError) as ei:
        at.verify(node, tok, agent="other")
    assert ei.value.reason == "TOKEN_INVALID"
    with pytest.raises(AuthenticationError):
        at.verify(node, tok[:-1] + ("A" if tok[-1] != "A" else "B"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    with pytest.raises(AuthenticationError) as ei:
        at.verify(node, tok, now=later)
    assert ei.value.reason == "TOKEN_EXPIRED"
    book = at.TokenBook(node, agent="triage")
    assert book.verify(tok).id == rec.id
    assert book.verify(tok).id == rec.id  # remembered now: still checked for expiry and secret
    with pytest.raises(AuthenticationError) as ei:
        book.verify(tok, now=later)
    assert ei.value.reason == "TOKEN_EXPIRED"
    with pytest.raises(AuthenticationError) as ei:
        book.verify(tok[:-1] + ("A" if tok[-1] != "A" else "B"))
    assert ei.value.reason == "TOKEN_INVALID"
    other_book = at.TokenBook(node, agent="other")
    with pytest.raises(AuthenticationError):
        other_book.verify(tok)
    at.revoke(node, rec.id)
    with pytest.raises(AuthenticationError) as ei:
        book.verify(tok)  # the cached book sees the revocation at once
    assert ei.value.reason == "TOKEN_REVOKED"


def test_minting_for_an_unknown_agent_and_revoking_an_unknown_id(node):
    with pytest.raises(NotFoundError) as ei:
        at.mint(node, "ghost")
    assert ei.value.reason == "UNKNOWN_AGENT"
    with pytest.raises(NotFoundError) as ei:
        at.revoke(node, "000000000000")
    assert ei.value.reason == "UNKNOWN_TOKEN"
    with pytest.raises(AuthenticationError):
        at.verify(node, "x" * 10_000)
