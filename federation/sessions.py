"""Sessions, challenges and replay protection (in memory, per node process).

A session is opened once per (agent, peer organization) with a verified
presentation; later requests in it are authenticated with the agent key
over deterministic protobuf bytes. Session state is a small transition
table (``TRANSITIONS``): ``open`` → ``terminated`` (drift, revocation,
operator) or ``expired`` (time). Sessions do not survive a restart: the
agent opens a new one (one VP verification).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from federation.errors import AuthenticationError

#: Allowed session state transitions (state machine as data).
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"terminated", "expired"}),
    "terminated": frozenset(),
    "expired": frozenset(),
}


@dataclass
class Session:
    """One open federation session at the provider.

    Attributes:
        id: random session id (base64url, 22 chars).
        peer_org: requesting organization DID.
        agent_did: the agent's ``did:key``.
        agent_public_key: 32-byte Ed25519 key from the verified credential subject.
        claims: the AgentCredential's ``credentialSubject`` claims.
        credential_id: the credential ``id``.
        created_at: unix time, seconds.
        expires_at: unix time, seconds.
        state: ``open``, ``terminated`` or ``expired``.
        requests: requests served in the session.
        denials: requests denied in the session.
        fields_released: field paths released so far in the session.

    """

    id: str
    peer_org: str
    agent_did: str
    agent_public_key: bytes
    claims: dict[str, Any]
    credential_id: str
    created_at: float
    expires_at: float
    state: str = "open"
    requests: int = 0
    denials: int = 0
    fields_released: set[str] = field(default_factory=set)

    def move(self, new_state: str) -> None:
        """Transition the session, per ``TRANSITIONS``.

        Raises:
            ValueError: the transition is not allowed.

        """
        if new_state not in TRANSITIONS[self.state]:
            raise ValueError(f"session {self.id}: {self.state} -> {new_state} not allowed")
        self.state = new_state

    def summary(self) -> dict[str, Any]:
        """The cumulative state given to the policy as ``input.session``."""
        return {
            "requests": self.requests,
            "denials": self.denials,
            "fields_released": sorted(self.fields_released),
        }


class SessionTable:
    """Open sessions of one provider node."""

    def __init__(self, *, ttl_seconds: float, clock=time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(
        self,
        *,
        peer_org: str,
        agent_did: str,
        agent_public_key: bytes,
        claims: dict[str, Any],
        credential_id: str,
        not_after: float | None = None,
    ) -> Session:
        """Open a session (its lifetime is capped by the credential's validUntil)."""
        now = self._clock()
        expires = now + self._ttl if not_after is None else min(now + self._ttl, not_after)
        sess = Session(
            id=secrets.token_urlsafe(16),
            peer_org=peer_org,
            agent_did=agent_did,
            agent_public_key=agent_public_key,
            claims=claims,
            credential_id=credential_id,
            created_at=now,
            expires_at=expires,
        )
        self._sessions[sess.id] = sess
        self._sweep(now)
        return sess

    def get(self, session_id: str, *, peer_org: str) -> Session:
        """The open session ``session_id`` of ``peer_org``.

        Raises:
            AuthenticationError: ``UNKNOWN_SESSION`` (absent or another org's),
                ``SESSION_EXPIRED`` or ``SESSION_TERMINATED``.

        """
        sess = self._sessions.get(session_id)
        if sess is None or sess.peer_org != peer_org:
            raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
        if sess.state == "open" and self._clock() >= sess.expires_at:
            sess.move("expired")
        if sess.state == "expired":
            raise AuthenticationError("session expired; open a new one", reason="SESSION_EXPIRED")
        if sess.state == "terminated":
            raise AuthenticationError("session terminated", reason="SESSION_TERMINATED")
        return sess

    def terminate_agent(self, agent_did: str) -> int:
        """Terminate every open session of an agent; returns how many."""
        n = 0
        for sess in self._sessions.values():
            if sess.agent_did == agent_did and sess.state == "open":
                sess.move("terminated")
                n += 1
        return n

    def __len__(self) -> int:
        return sum(1 for s in self._sessions.values() if s.state == "open")

    def _sweep(self, now: float) -> None:
        if len(self._sessions) > 10_000:
            for sid in [k for k, s in self._sessions.items() if s.expires_at < now - 3600]:
                del self._sessions[sid]


class ChallengeTable:
    """Single-use challenges for presentations and agent proof of possession."""

    def __init__(self, *, ttl_seconds: float = 120.0, clock=time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._open: dict[str, tuple[str, float]] = {}

    def issue(self, subject: str) -> tuple[str, float]:
        """A fresh challenge bound to ``subject``; returns (challenge, expires_at)."""
        now = self._clock()
        if len(self._open) > 10_000:
            self._open = {k: v for k, v in self._open.items() if v[1] > now}
        challenge = secrets.token_urlsafe(24)
        self._open[challenge] = (subject, now + self._ttl)
        return challenge, now + self._ttl

    def consume(self, challenge: str, subject: str) -> None:
        """Use a challenge once.

        Raises:
            AuthenticationError: ``WRONG_CHALLENGE`` if unknown, used, expired
                or issued for another subject.

        """
        entry = self._open.pop(challenge, None)
        if entry is None or entry[0] != subject or entry[1] < self._clock():
            raise AuthenticationError(
                "challenge unknown, used, expired or for another agent", reason="WRONG_CHALLENGE"
            )


class NonceCache:
    """Replay protection: each request nonce is accepted once within the skew window."""

    def __init__(self, *, skew_seconds: float, clock=time.time) -> None:
        self._skew = skew_seconds
        self._clock = clock
        self._seen: dict[str, float] = {}

    def check(self, nonce: str, timestamp_ms: int) -> None:
        """Accept a (nonce, timestamp) pair once.

        Raises:
            AuthenticationError: ``STALE_REQUEST`` when the timestamp is outside
                ±skew of now, ``REPLAYED_REQUEST`` when the nonce was seen.

        """
        now = self._clock()
        if abs(now - timestamp_ms / 1000.0) > self._skew:
            raise AuthenticationError(
                "request timestamp outside the accepted clock skew", reason="STALE_REQUEST"
            )
        if not 16 <= len(nonce) <= 128:
            raise AuthenticationError("nonce must be 16..128 characters", reason="BAD_NONCE")
        if nonce in self._seen:
            raise AuthenticationError("request nonce already seen (replay)", reason="REPLAYED_REQUEST")
        self._seen[nonce] = now
        if len(self._seen) > 100_000:
            cutoff = now - 2 * self._skew
            self._seen = {k: t for k, t in self._seen.items() if t >= cutoff}
