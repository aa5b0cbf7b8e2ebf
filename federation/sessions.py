"""Sessions, challenges and replay protection: in memory, or shared by a node's replicas.

The in-memory tables (:class:`SessionTable`, :class:`ChallengeTable`,
:class:`NonceCache`) serve a node that runs as one process. A node run as
several replicas on one PostgreSQL database uses the ``Shared*`` tables
below instead, with the same interface and reason codes, over
:class:`federation.store.ReplicaStateStore` (docs/architecture.md,
"Scale-out"): a session opened through one replica is usable through
another, a challenge issued by one is consumed by another, and a nonce seen
by one is a replay at every other.

A session is opened once per (agent, peer organization) with a verified
presentation; later requests in it are authenticated with the agent key
(signed payloads, :mod:`federation.signing`). Session state is a small transition
table (``TRANSITIONS``): ``open`` → ``terminated`` (drift, revocation,
operator) or ``expired`` (time). In-memory sessions do not survive a
restart (the agent opens a new one: one VP verification); shared ones do.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from federation.errors import AuthenticationError, ResourceLimitError

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
        delegation: the verified delegation authority
            (:class:`federation.delegation.DelegatedAuthority`) when the agent acts
            under a chain; ``None`` for a direct session.

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
    #: issue #15: a request cap set by behavioural throttling (``federation.behaviour``), or None
    throttle_cap: int | None = None
    requests: int = 0
    denials: int = 0
    fields_released: set[str] = field(default_factory=set)
    delegation: Any = None

    def move(self, new_state: str) -> None:
        """Transition the session, per ``TRANSITIONS``.

        Raises:
            ValueError: the transition is not allowed.

        """
        if new_state not in TRANSITIONS[self.state]:
            raise ValueError(f"session {self.id}: {self.state} -> {new_state} not allowed")
        self.state = new_state


class SessionTable:
    """Open sessions of one provider node, bounded per agent and per peer (issue #18, class 10).

    Sessions are kept in creation order; since every session lives at most
    ``ttl_seconds``, the sweep pops expired sessions from the front in time
    proportional to what it removes. Open sessions are counted per
    (peer, agent) and per peer; :meth:`create` refuses beyond the caps
    instead of evicting (an agent cannot push another agent's session out).
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_per_agent: int = 64,
        max_per_peer: int = 4096,
        clock=time.time,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_agent = max_per_agent
        self._max_peer = max_per_peer
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._open_by_agent: dict[tuple[str, str], set[str]] = {}
        self._open_by_peer: dict[str, set[str]] = {}

    def create(
        self,
        *,
        peer_org: str,
        agent_did: str,
        agent_public_key: bytes,
        claims: dict[str, Any],
        credential_id: str,
        not_after: float | None = None,
        delegation: Any = None,
    ) -> Session:
        """Open a session (its lifetime is capped by the credential's validUntil).

        ``delegation`` is the verified :class:`federation.delegation.DelegatedAuthority`
        of a session opened under a delegation chain.

        Raises:
            ResourceLimitError: ``SESSION_LIMIT_AGENT`` / ``SESSION_LIMIT_PEER``
                when the agent or its organization already holds the most open
                sessions allowed (RESOURCE_EXHAUSTED; retry after one expires).

        """
        now = self._clock()
        self._sweep(now)
        agent_open = self._open_by_agent.get((peer_org, agent_did), set())
        self._prune(agent_open, now)
        if len(agent_open) >= self._max_agent:
            raise ResourceLimitError(
                f"agent already holds {len(agent_open)} open sessions",
                reason="SESSION_LIMIT_AGENT",
                metadata={"limit": str(self._max_agent)},
            )
        peer_open = self._open_by_peer.get(peer_org, set())
        if len(peer_open) >= self._max_peer:
            self._prune(peer_open, now)
        if len(peer_open) >= self._max_peer:
            raise ResourceLimitError(
                f"organization already holds {len(peer_open)} open sessions",
                reason="SESSION_LIMIT_PEER",
                metadata={"limit": str(self._max_peer)},
            )
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
            delegation=delegation,
        )
        self._sessions[sess.id] = sess
        self._open_by_agent.setdefault((peer_org, agent_did), agent_open).add(sess.id)
        self._open_by_peer.setdefault(peer_org, peer_open).add(sess.id)
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

    def _prune(self, ids: set[str], now: float) -> None:
        """Drop ids of sessions that are no longer open from a count set."""
        for sid in [i for i in ids if not self._is_open(i, now)]:
            ids.discard(sid)

    def _is_open(self, sid: str, now: float) -> bool:
        sess = self._sessions.get(sid)
        return sess is not None and sess.state == "open" and now < sess.expires_at

    def _sweep(self, now: float) -> None:
        """Forget sessions older than the TTL (front of the creation-ordered table)."""
        while self._sessions:
            sid, sess = next(iter(self._sessions.items()))
            if sess.created_at + self._ttl > now:
                break
            del self._sessions[sid]
            key = (sess.peer_org, sess.agent_did)
            for table, k in ((self._open_by_agent, key), (self._open_by_peer, sess.peer_org)):
                ids = table.get(k)  # type: ignore[attr-defined]
                if ids is not None:
                    ids.discard(sid)
                    if not ids:
                        del table[k]  # type: ignore[attr-defined]


class ChallengeTable:
    """Single-use challenges for presentations and agent proof of possession, bounded.

    Challenges expire after ``ttl_seconds`` and are swept from the front of
    the issue-ordered table. Each ``owner`` (the requesting peer organization,
    or ``"local"`` for this node's own agents) may hold at most
    ``max_per_owner`` open challenges, and the table at most ``max_open``.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = 120.0,
        max_per_owner: int = 1024,
        max_open: int = 16384,
        clock=time.time,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_owner = max_per_owner
        self._max_open = max_open
        self._clock = clock
        self._open: dict[str, tuple[str, str, float]] = {}  # challenge -> (owner, subject, expires)
        self._per_owner: dict[str, int] = {}

    def issue(self, subject: str, *, owner: str = "local") -> tuple[str, float]:
        """A fresh challenge bound to ``subject``; returns (challenge, expires_at).

        Raises:
            ResourceLimitError: ``CHALLENGE_LIMIT`` when ``owner`` (or the
                whole table) already holds the most open challenges allowed.

        """
        now = self._clock()
        self._sweep(now)
        if self._per_owner.get(owner, 0) >= self._max_owner or len(self._open) >= self._max_open:
            raise ResourceLimitError(
                "too many open challenges; use or let expire the ones issued",
                reason="CHALLENGE_LIMIT",
                metadata={"limit": str(self._max_owner)},
            )
        challenge = secrets.token_urlsafe(24)
        self._open[challenge] = (owner, subject, now + self._ttl)
        self._per_owner[owner] = self._per_owner.get(owner, 0) + 1
        return challenge, now + self._ttl

    def consume(self, challenge: str, subject: str) -> None:
        """Use a challenge once.

        Raises:
            AuthenticationError: ``WRONG_CHALLENGE`` if unknown, used, expired
                or issued for another subject.

        """
        entry = self._open.pop(challenge, None) if isinstance(challenge, str) else None
        if entry is not None:
            self._release(entry[0])
        if entry is None or entry[1] != subject or entry[2] < self._clock():
            raise AuthenticationError(
                "challenge unknown, used, expired or for another agent", reason="WRONG_CHALLENGE"
            )

    def __len__(self) -> int:
        return len(self._open)

    def _release(self, owner: str) -> None:
        left = self._per_owner.get(owner, 1) - 1
        if left > 0:
            self._per_owner[owner] = left
        else:
            self._per_owner.pop(owner, None)

    def _sweep(self, now: float) -> None:
        while self._open:
            challenge, (owner, _, expires) = next(iter(self._open.items()))
            if expires > now:
                break
            del self._open[challenge]
            self._release(owner)


class NonceCache:
    """Replay protection: each request nonce is accepted once within the skew window.

    Nonces are remembered in arrival order for ``2 × skew`` seconds (a request
    older than ``skew`` is refused as stale anyway) and swept from the front.
    """

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
        cutoff = now - 2 * self._skew
        while self._seen:
            first, t = next(iter(self._seen.items()))
            if t >= cutoff:
                break
            del self._seen[first]
        if nonce in self._seen:
            raise AuthenticationError("request nonce already seen (replay)", reason="REPLAYED_REQUEST")
        self._seen[nonce] = now


# ---------------------------------------------------------------- shared by the replicas of one node


def _authority_to_json(authority: Any) -> str | None:
    """JSON of a :class:`federation.delegation.DelegatedAuthority` (frozensets as sorted lists)."""
    if authority is None:
        return None
    import dataclasses
    import json

    doc = {
        f.name: sorted(v) if isinstance(v, frozenset) else list(v) if isinstance(v, tuple) else v
        for f in dataclasses.fields(authority)
        for v in [getattr(authority, f.name)]
    }
    return json.dumps(doc, sort_keys=True)


def _authority_from_json(raw: str | None) -> Any:
    if raw is None:
        return None
    import json

    from federation.delegation import DelegatedAuthority

    doc = json.loads(raw)
    return DelegatedAuthority(
        holder=doc["holder"],
        claims=doc["claims"],
        credential_id=doc["credential_id"],
        not_after=doc["not_after"],
        scopes=frozenset(doc["scopes"]),
        purposes=frozenset(doc["purposes"]),
        fields=frozenset(doc["fields"]),
        chain_agents=tuple(doc["chain_agents"]),
        root_credential=doc["root_credential"],
    )


class SharedSessionTable:
    """Provider sessions in the node database, shared by its replicas (interface of :class:`SessionTable`).

    A session row is written once when it opens (with its delegation
    authority, if any) and its ``state`` column is read at every
    :meth:`get`, so a termination through any replica (drift, revocation)
    holds at every other at once. The parsed :class:`Session` is kept per
    replica (at most ``cache_max``, dropped when expired); its counters
    (``requests``, ``denials``, ``fields_released``, the input of a
    contract's session limits) are this replica's view only.

    Args:
        store: the :class:`federation.store.ReplicaStateStore` over the node database.
        ttl_seconds: session lifetime (seconds).
        max_per_agent / max_per_peer: open-session caps, counted in the
            database under a lock per requesting organization.
        clock: Unix time in seconds.
        cache_max: parsed sessions kept by this replica.

    """

    def __init__(
        self,
        store: Any,
        *,
        ttl_seconds: float,
        max_per_agent: int = 64,
        max_per_peer: int = 4096,
        clock=time.time,
        cache_max: int = 16384,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._max_agent = max_per_agent
        self._max_peer = max_per_peer
        self._clock = clock
        self._cache_max = cache_max
        self._cache: dict[str, Session] = {}
        #: the calls run in worker threads (federation.replicas.shared_call): one cache writer at a time
        self._cache_lock = threading.Lock()

    def create(
        self,
        *,
        peer_org: str,
        agent_did: str,
        agent_public_key: bytes,
        claims: dict[str, Any],
        credential_id: str,
        not_after: float | None = None,
        delegation: Any = None,
    ) -> Session:
        """Open a session (as :meth:`SessionTable.create`; ``delegation`` is stored with it).

        Raises:
            ResourceLimitError: ``SESSION_LIMIT_AGENT`` / ``SESSION_LIMIT_PEER``.

        """
        import json

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
            delegation=delegation,
        )
        hit = self._store.session_create(
            {
                "id": sess.id,
                "peer_org": peer_org,
                "agent_did": agent_did,
                "agent_public_key": bytes(agent_public_key),
                "claims": json.dumps(claims, sort_keys=True),
                "credential_id": credential_id,
                "delegation": _authority_to_json(delegation),
                "created_at": now,
                "expires_at": expires,
                "state": "open",
            },
            now=now,
            max_per_agent=self._max_agent,
            max_per_peer=self._max_peer,
        )
        if hit == "agent":
            raise ResourceLimitError(
                "agent already holds the most open sessions allowed",
                reason="SESSION_LIMIT_AGENT",
                metadata={"limit": str(self._max_agent)},
            )
        if hit == "peer":
            raise ResourceLimitError(
                "organization already holds the most open sessions allowed",
                reason="SESSION_LIMIT_PEER",
                metadata={"limit": str(self._max_peer)},
            )
        self._remember(sess)
        return sess

    def _remember(self, sess: Session) -> None:
        with self._cache_lock:
            if len(self._cache) >= self._cache_max:
                now = self._clock()
                for sid in [k for k, s in self._cache.items() if s.expires_at <= now or s.state != "open"]:
                    del self._cache[sid]
                while len(self._cache) >= self._cache_max:  # oldest first
                    del self._cache[next(iter(self._cache))]
            self._cache[sess.id] = sess

    def get(self, session_id: str, *, peer_org: str) -> Session:
        """The open session ``session_id`` of ``peer_org`` (one indexed read of its row).

        Raises:
            AuthenticationError: ``UNKNOWN_SESSION``, ``SESSION_EXPIRED`` or ``SESSION_TERMINATED``.

        """
        import json

        if not isinstance(session_id, str) or not 0 < len(session_id) <= 64:
            raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
        sess = self._cache.get(session_id)
        if sess is None:
            row = self._store.session_get(session_id)
            if row is None:
                raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
            sess = Session(
                id=row.id,
                peer_org=row.peer_org,
                agent_did=row.agent_did,
                agent_public_key=bytes(row.agent_public_key),
                claims=json.loads(row.claims),
                credential_id=row.credential_id,
                created_at=row.created_at,
                expires_at=row.expires_at,
                state=row.state,
                delegation=_authority_from_json(row.delegation),
            )
            self._remember(sess)
        else:
            current = self._store.session_state(session_id)
            if current is None:
                self._cache.pop(session_id, None)
                raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
            if current != sess.state and current in TRANSITIONS[sess.state]:
                sess.move(current)
        if sess.peer_org != peer_org:
            raise AuthenticationError("unknown session", reason="UNKNOWN_SESSION")
        if sess.state == "open" and self._clock() >= sess.expires_at:
            sess.move("expired")
        if sess.state == "expired":
            raise AuthenticationError("session expired; open a new one", reason="SESSION_EXPIRED")
        if sess.state == "terminated":
            raise AuthenticationError("session terminated", reason="SESSION_TERMINATED")
        return sess

    @contextlib.contextmanager
    def counted(self, sess: Session) -> Iterator[None]:
        """Hold ``sess``'s row locked across replicas with its shared counters loaded; count a request.

        On entry ``sess.requests``, ``sess.denials`` and ``sess.fields_released``
        become the counts of every replica; on exit the stored request counter
        grows by one (the caller increments ``sess.requests`` itself after the
        decision, as for a session of one process). Used around the decision
        of a request under a contract with session limits, so that two
        replicas cannot both admit the last request a limit allows. Blocking.
        """
        with self._store.session_counters(sess.id) as cell:
            if cell is not None:
                sess.requests, sess.denials = cell["requests"], cell["denials"]
                sess.fields_released = set(cell["released"])
            yield

    def count(self, sess: Session, *, denials: int = 0, released: Iterable[str] = ()) -> None:
        """Add a denial and/or released field names to the shared counters of ``sess`` (blocking)."""
        with self._store.session_counters(sess.id, add_request=False) as cell:
            if cell is not None:
                cell["denials"] += denials
                cell["released"] = sorted(set(cell["released"]) | set(released))
                sess.denials, sess.fields_released = cell["denials"], set(cell["released"])

    def terminate(self, sess: Session) -> None:
        """Terminate one session at every replica."""
        if sess.state == "open":
            sess.move("terminated")
        self._store.session_set_state(sess.id, "terminated")

    def terminate_agent(self, agent_did: str) -> int:
        """Terminate every open session of an agent at every replica; returns how many rows moved."""
        with self._cache_lock:
            cached = list(self._cache.values())
        for sess in cached:
            if sess.agent_did == agent_did and sess.state == "open":
                sess.move("terminated")
        return self._store.sessions_terminate_agent(agent_did)

    def __len__(self) -> int:
        return self._store.sessions_open(now=self._clock())


class SharedChallengeTable:
    """Single-use challenges in the node database (same interface as :class:`ChallengeTable`).

    Issued by one replica, consumed by any (a row deleted once: a second
    consumer finds nothing). The caps are counted in the database under a
    lock per owner.
    """

    def __init__(
        self,
        store: Any,
        *,
        ttl_seconds: float = 120.0,
        max_per_owner: int = 1024,
        max_open: int = 16384,
        clock=time.time,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._max_owner = max_per_owner
        self._max_open = max_open
        self._clock = clock

    def issue(self, subject: str, *, owner: str = "local") -> tuple[str, float]:
        """A fresh challenge bound to ``subject``; returns (challenge, expires_at).

        Raises:
            ResourceLimitError: ``CHALLENGE_LIMIT``.

        """
        now = self._clock()
        challenge = secrets.token_urlsafe(24)
        if not self._store.challenge_issue(
            challenge,
            owner=owner,
            subject=subject,
            expires_at=now + self._ttl,
            now=now,
            max_per_owner=self._max_owner,
            max_open=self._max_open,
        ):
            raise ResourceLimitError(
                "too many open challenges; use or let expire the ones issued",
                reason="CHALLENGE_LIMIT",
                metadata={"limit": str(self._max_owner)},
            )
        return challenge, now + self._ttl

    def consume(self, challenge: str, subject: str) -> None:
        """Use a challenge once, whichever replica issued it.

        Raises:
            AuthenticationError: ``WRONG_CHALLENGE``.

        """
        entry = (
            self._store.challenge_take(challenge)
            if isinstance(challenge, str) and 0 < len(challenge) <= 64
            else None
        )
        if entry is None or entry[1] != subject or entry[2] < self._clock():
            raise AuthenticationError(
                "challenge unknown, used, expired or for another agent", reason="WRONG_CHALLENGE"
            )

    def __len__(self) -> int:
        return self._store.challenges_open(now=self._clock())


class SharedNonceCache:
    """Replay protection across replicas: each nonce is inserted once in ``node_nonces``.

    The same checks as :class:`NonceCache`.

    Rows older than ``2 × skew`` are deleted by the integrator's sweep
    (:meth:`sweep`); a request older than ``skew`` is refused as stale before
    its nonce is looked up, so a swept nonce can never be replayed.
    """

    def __init__(self, store: Any, *, skew_seconds: float, clock=time.time) -> None:
        self._store = store
        self._skew = skew_seconds
        self._clock = clock

    def check(self, nonce: str, timestamp_ms: int) -> None:
        """Accept a (nonce, timestamp) pair once across every replica.

        Raises:
            AuthenticationError: ``STALE_REQUEST``, ``BAD_NONCE`` or ``REPLAYED_REQUEST``.

        """
        now = self._clock()
        if abs(now - timestamp_ms / 1000.0) > self._skew:
            raise AuthenticationError(
                "request timestamp outside the accepted clock skew", reason="STALE_REQUEST"
            )
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise AuthenticationError("nonce must be 16..128 characters", reason="BAD_NONCE")
        if not self._store.nonce_first_use(nonce, now=now):
            raise AuthenticationError("request nonce already seen (replay)", reason="REPLAYED_REQUEST")

    def sweep(self) -> dict[str, int]:
        """Delete expired shared rows (nonces older than ``2 × skew``, expired sessions and challenges)."""
        now = self._clock()
        return self._store.sweep(now=now, nonce_cutoff=now - 2 * self._skew)


class SharedLocalSessions:
    """The agents' sessions at this node (requester side), shared by the replicas.

    A mapping of session id to :class:`federation.domain.LocalSession`
    supporting the two operations the requester uses: ``table[id] = s`` and
    ``table.get(id)``. Rows are immutable once written, so each replica keeps
    the ones it has read (at most ``cache_max``).
    """

    def __init__(self, store: Any, *, cache_max: int = 16384) -> None:
        self._store = store
        self._cache: dict[str, Any] = {}
        self._cache_max = cache_max
        self._cache_lock = threading.Lock()

    def _remember(self, sid: str, value: Any) -> None:
        with self._cache_lock:
            while len(self._cache) >= self._cache_max:
                del self._cache[next(iter(self._cache))]
            self._cache[sid] = value

    def __setitem__(self, session_id: str, value: Any) -> None:
        self._store.local_session_put(
            {
                "id": session_id,
                "peer_org": value.peer_org,
                "agent_did": value.agent_did,
                "agent_public_key": bytes(value.agent_public_key),
                "expires_at": float(value.expires_at),
            }
        )
        self._remember(session_id, value)

    def get(self, session_id: str, default: Any = None) -> Any:
        """The session ``session_id`` (from any replica) or ``default``."""
        hit = self._cache.get(session_id)
        if hit is not None:
            return hit
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 64:
            return default
        row = self._store.local_session_get(session_id)
        if row is None:
            return default
        from federation.domain import LocalSession

        value = LocalSession(
            session_id=row.id,
            peer_org=row.peer_org,
            agent_did=row.agent_did,
            agent_public_key=bytes(row.agent_public_key),
            expires_at=row.expires_at,
        )
        self._remember(session_id, value)
        return value
