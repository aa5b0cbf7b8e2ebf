"""Sessions, challenges and the replay cache driven by a fake clock (no processes, no sockets).

The session state machine is a table (``federation.sessions.TRANSITIONS``);
as h11 tests its own, every (state, event) pair is tried.
"""

from __future__ import annotations

import itertools

import pytest

from federation.errors import AuthenticationError, ResourceLimitError
from federation.sessions import TRANSITIONS, ChallengeTable, NonceCache, Session, SessionTable

PEER, OTHER = "did:web:a.example", "did:web:b.example"
AGENT = "did:key:z6MkAgent"


class FakeClock:
    """Unix seconds that move only when told."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _session(state: str) -> Session:
    s = Session(
        id="s",
        peer_org=PEER,
        agent_did=AGENT,
        agent_public_key=b"k" * 32,
        claims={},
        credential_id="",
        created_at=0.0,
        expires_at=1.0,
    )
    s.state = state
    return s


# ---------------------------------------------------------------- the transition table


@pytest.mark.parametrize("state,target", list(itertools.product(TRANSITIONS, TRANSITIONS)))
def test_every_transition_is_allowed_exactly_when_the_table_says(state, target):
    s = _session(state)
    if target in TRANSITIONS[state]:
        s.move(target)
        assert s.state == target
    else:
        with pytest.raises(ValueError):
            s.move(target)
        assert s.state == state


def test_terminal_states_have_no_way_out_and_open_is_the_only_start():
    assert TRANSITIONS["terminated"] == frozenset() and TRANSITIONS["expired"] == frozenset()
    reachable = set().union(*TRANSITIONS.values())
    assert "open" not in reachable  # nothing reopens a session


# ---------------------------------------------------------------- the session table


def _table(clock, **kw) -> SessionTable:
    return SessionTable(ttl_seconds=kw.pop("ttl", 60), clock=clock, **kw)


def _open(table: SessionTable, agent: str = AGENT, peer: str = PEER, **kw) -> Session:
    return table.create(
        peer_org=peer, agent_did=agent, agent_public_key=b"k" * 32, claims={}, credential_id="", **kw
    )


def test_a_session_expires_at_its_ttl():
    clock = FakeClock()
    table = _table(clock)
    s = _open(table)
    clock.advance(59.9)
    assert table.get(s.id, peer_org=PEER) is s
    clock.advance(0.1)
    with pytest.raises(AuthenticationError) as e:
        table.get(s.id, peer_org=PEER)
    assert e.value.reason == "SESSION_EXPIRED" and s.state == "expired"


def test_the_credentials_validity_caps_the_session():
    clock = FakeClock()
    table = _table(clock)
    s = _open(table, not_after=clock.t + 5)
    clock.advance(5)
    with pytest.raises(AuthenticationError) as e:
        table.get(s.id, peer_org=PEER)
    assert e.value.reason == "SESSION_EXPIRED"


def test_another_organization_cannot_use_a_session():
    table = _table(FakeClock())
    s = _open(table)
    with pytest.raises(AuthenticationError) as e:
        table.get(s.id, peer_org=OTHER)
    assert e.value.reason == "UNKNOWN_SESSION"


def test_terminating_an_agent_ends_all_its_sessions_and_only_its():
    table = _table(FakeClock())
    mine = [_open(table), _open(table)]
    other = _open(table, agent="did:key:z6MkOther")
    assert table.terminate_agent(AGENT) == 2
    for s in mine:
        with pytest.raises(AuthenticationError) as e:
            table.get(s.id, peer_org=PEER)
        assert e.value.reason == "SESSION_TERMINATED"
    assert table.get(other.id, peer_org=PEER) is other
    assert len(table) == 1


def test_per_agent_cap_refuses_then_frees_when_sessions_expire():
    clock = FakeClock()
    table = _table(clock, max_per_agent=2)
    _open(table), _open(table)
    with pytest.raises(ResourceLimitError) as e:
        _open(table)
    assert e.value.reason == "SESSION_LIMIT_AGENT"
    _open(table, agent="did:key:z6MkOther")  # another agent is not pushed out
    clock.advance(61)
    assert _open(table).state == "open"


def test_per_peer_cap():
    table = _table(FakeClock(), max_per_peer=2)
    _open(table, agent="did:key:a"), _open(table, agent="did:key:b")
    with pytest.raises(ResourceLimitError) as e:
        _open(table, agent="did:key:c")
    assert e.value.reason == "SESSION_LIMIT_PEER"
    assert _open(table, agent="did:key:c", peer=OTHER).state == "open"


def test_sessions_older_than_the_ttl_are_forgotten():
    clock = FakeClock()
    table = _table(clock)
    s = _open(table)
    clock.advance(61)
    _open(table, agent="did:key:z6MkOther")  # creation sweeps the front of the table
    with pytest.raises(AuthenticationError) as e:
        table.get(s.id, peer_org=PEER)
    assert e.value.reason == "UNKNOWN_SESSION"


# ---------------------------------------------------------------- challenges


def test_a_challenge_is_used_once_for_its_subject():
    challenges = ChallengeTable(clock=FakeClock())
    c, _ = challenges.issue("subject")
    with pytest.raises(AuthenticationError) as e:
        challenges.consume(c, "another subject")
    assert e.value.reason == "WRONG_CHALLENGE"
    c, _ = challenges.issue("subject")
    challenges.consume(c, "subject")
    with pytest.raises(AuthenticationError):
        challenges.consume(c, "subject")


def test_an_expired_challenge_is_refused():
    clock = FakeClock()
    challenges = ChallengeTable(ttl_seconds=10, clock=clock)
    c, expires = challenges.issue("subject")
    assert expires == clock.t + 10
    clock.advance(10.5)
    with pytest.raises(AuthenticationError) as e:
        challenges.consume(c, "subject")
    assert e.value.reason == "WRONG_CHALLENGE"


def test_open_challenges_are_bounded_per_owner_and_expiry_frees_them():
    clock = FakeClock()
    challenges = ChallengeTable(ttl_seconds=10, max_per_owner=2, clock=clock)
    challenges.issue("a", owner=PEER), challenges.issue("b", owner=PEER)
    with pytest.raises(ResourceLimitError) as e:
        challenges.issue("c", owner=PEER)
    assert e.value.reason == "CHALLENGE_LIMIT"
    challenges.issue("c", owner=OTHER)  # another owner is unaffected
    clock.advance(11)
    challenges.issue("c", owner=PEER)
    assert len(challenges) == 1


def test_the_whole_table_is_bounded():
    challenges = ChallengeTable(max_per_owner=10, max_open=3, clock=FakeClock())
    for i in range(3):
        challenges.issue(str(i), owner=f"o{i}")
    with pytest.raises(ResourceLimitError):
        challenges.issue("x", owner="fresh")


# ---------------------------------------------------------------- replay cache


def test_a_nonce_is_accepted_once():
    clock = FakeClock()
    nonces = NonceCache(skew_seconds=120, clock=clock)
    ms = int(clock.t * 1000)
    nonces.check("n" * 16, ms)
    with pytest.raises(AuthenticationError) as e:
        nonces.check("n" * 16, ms)
    assert e.value.reason == "REPLAYED_REQUEST"


@pytest.mark.parametrize("offset", [-121, 121])
def test_a_timestamp_outside_the_skew_is_stale(offset):
    clock = FakeClock()
    nonces = NonceCache(skew_seconds=120, clock=clock)
    with pytest.raises(AuthenticationError) as e:
        nonces.check("n" * 16, int((clock.t + offset) * 1000))
    assert e.value.reason == "STALE_REQUEST"


def test_nonces_are_remembered_for_twice_the_skew_then_swept():
    clock = FakeClock()
    nonces = NonceCache(skew_seconds=120, clock=clock)
    nonces.check("a" * 16, int(clock.t * 1000))
    clock.advance(200)  # inside 2 x skew: still remembered
    nonces.check("b" * 16, int(clock.t * 1000))
    assert len(nonces._seen) == 2
    clock.advance(41)  # the first is now older than 2 x skew: swept on the next check
    nonces.check("c" * 16, int(clock.t * 1000))
    assert "a" * 16 not in nonces._seen and len(nonces._seen) == 2


def test_a_replay_within_the_skew_is_caught_even_with_a_fresh_timestamp():
    clock = FakeClock()
    nonces = NonceCache(skew_seconds=120, clock=clock)
    nonces.check("n" * 16, int(clock.t * 1000))
    clock.advance(100)
    with pytest.raises(AuthenticationError) as e:
        nonces.check("n" * 16, int(clock.t * 1000))
    assert e.value.reason == "REPLAYED_REQUEST"
