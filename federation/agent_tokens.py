"""Per-agent bearer tokens for the node's local HTTP adapters (``accord mcp serve --http``).

A token stands for one registered agent of this node when a local client
(an MCP client over Streamable HTTP, a local A2A client) talks to an adapter
that then acts as that agent through the node's AgentService. The token never
replaces the agent's credential towards partners: it only decides which local
caller may drive which local agent.

Token format (RFC 6750 ``b64token``): ``acc_<id>.<secret>``: ``id`` is 12
lowercase hex digits naming the row, ``secret`` 43 base64url characters
(32 random bytes). Only ``sha256(secret)`` is stored, in
``<node dir>/agent-tokens.json`` (mode 0600), with the agent name, creation
time, expiry and revocation time. The file is re-read when it changes, so
``accord agent token --revoke`` takes effect on a running adapter at once.

API (small on purpose; the A2A gateway may reuse it):

- :func:`mint` → ``(token, TokenRecord)``: the token text is shown once.
- :func:`verify` → the :class:`TokenRecord` of a valid token, else raises.
- :func:`revoke`, :func:`list_tokens`.
- :class:`TokenBook`: a cached reader of one node directory's token file for
  servers (``verify`` re-reads the file only when its mtime changed).

Errors (:class:`federation.errors.AuthenticationError`, status
``UNAUTHENTICATED``): ``TOKEN_INVALID`` (malformed, unknown id, wrong
secret, other agent), ``TOKEN_EXPIRED``, ``TOKEN_REVOKED``;
:class:`federation.errors.NotFoundError` ``UNKNOWN_AGENT`` when minting for
an agent the node does not hold, ``UNKNOWN_TOKEN`` when revoking an id it
does not hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from federation.errors import AuthenticationError, InvalidRequestError, NotFoundError
from federation.paths import write_private

TOKEN_FILE = "agent-tokens.json"
"""The token file's name inside a node directory."""

MAX_TOKEN_CHARS = 128
"""A bearer value longer than this is refused before any parsing."""

MAX_TOKENS = 10_000
"""At most this many token rows per node (live and revoked)."""

MAX_TTL_DAYS = 365
"""Longest validity :func:`mint` accepts."""

_TOKEN_RE = re.compile(r"^acc_([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class TokenRecord:
    """One stored token (never the secret).

    Attributes:
        id: 12 hex digits (the part of the token before the dot, without ``acc_``).
        agent: the agent name it stands for.
        secret_sha256: hex SHA-256 of the secret part.
        created_at / expires_at: RFC 3339 UTC times.
        revoked_at: RFC 3339 UTC time, or ``""`` while live.
        label: free text the operator gave (≤ 200 characters).

    """

    id: str
    agent: str
    secret_sha256: str
    created_at: str
    expires_at: str
    revoked_at: str = ""
    label: str = ""

    def expired(self, now: dt.datetime) -> bool:
        """True once ``now`` (aware) is at or past ``expires_at``."""
        return now >= dt.datetime.fromisoformat(self.expires_at)

    def public(self) -> dict[str, str]:
        """The record without the secret's digest (for listings)."""
        d = asdict(self)
        d.pop("secret_sha256")
        return d


def _path(node_dir: Path) -> Path:
    return Path(node_dir) / TOKEN_FILE


def _load(node_dir: Path) -> list[TokenRecord]:
    p = _path(node_dir)
    if not p.is_file():
        return []
    doc = json.loads(p.read_text())
    return [TokenRecord(**row) for row in doc.get("tokens", [])[:MAX_TOKENS]]


def _save(node_dir: Path, rows: list[TokenRecord]) -> None:
    write_private(_path(node_dir), json.dumps({"tokens": [asdict(r) for r in rows]}, indent=1))


def _time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat()


_lock = threading.Lock()


def mint(
    node_dir: Path,
    agent: str,
    *,
    ttl_days: float = 30,
    label: str = "",
    now: dt.datetime | None = None,
) -> tuple[str, TokenRecord]:
    """Create a token for ``agent`` (a registered agent of this node) valid ``ttl_days`` days.

    Returns:
        ``(token, record)``: ``token`` is the only copy of the secret.

    Raises:
        NotFoundError: ``UNKNOWN_AGENT``: no wallet ``agents/<agent>.json`` in ``node_dir``.
        InvalidRequestError: ``BAD_NAME`` (agent name), ``BAD_VALIDITY`` (ttl not in
            (0, 365] days), ``RESOURCE_LIMIT``-like ``MALFORMED_REQUEST`` when the file
            already holds :data:`MAX_TOKENS` rows.

    """
    if not _NAME_RE.match(agent):
        raise InvalidRequestError(f"not an agent name: {agent[:80]!r}", reason="BAD_NAME")
    if not 0 < ttl_days <= MAX_TTL_DAYS:
        raise InvalidRequestError(
            f"token validity must be in (0, {MAX_TTL_DAYS}] days", reason="BAD_VALIDITY"
        )
    if not (Path(node_dir) / "agents" / f"{agent}.json").is_file():
        raise NotFoundError(f"no agent {agent!r} in {node_dir}", reason="UNKNOWN_AGENT")
    now = now or dt.datetime.now(dt.UTC)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    with _lock:
        rows = _load(node_dir)
        if len(rows) >= MAX_TOKENS:
            raise InvalidRequestError(
                f"{TOKEN_FILE} holds {MAX_TOKENS} tokens; revoke and prune first", reason="MALFORMED_REQUEST"
            )
        taken = {r.id for r in rows}
        token_id = secrets.token_hex(6)
        while token_id in taken:
            token_id = secrets.token_hex(6)
        record = TokenRecord(
            id=token_id,
            agent=agent,
            secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
            created_at=_time(now),
            expires_at=_time(now + dt.timedelta(days=ttl_days)),
            label=label[:200],
        )
        _save(node_dir, [*rows, record])
    return f"acc_{token_id}.{secret}", record


def revoke(node_dir: Path, token_id: str, *, now: dt.datetime | None = None) -> TokenRecord:
    """Mark token ``token_id`` revoked (kept for the record).

    Raises:
        NotFoundError: ``UNKNOWN_TOKEN``: no such id.

    """
    now = now or dt.datetime.now(dt.UTC)
    with _lock:
        rows = _load(node_dir)
        for i, r in enumerate(rows):
            if r.id == token_id:
                if not r.revoked_at:
                    rows[i] = TokenRecord(**{**asdict(r), "revoked_at": _time(now)})
                    _save(node_dir, rows)
                return rows[i]
    raise NotFoundError(f"no token {token_id[:40]!r}", reason="UNKNOWN_TOKEN")


def list_tokens(node_dir: Path, *, agent: str | None = None) -> list[TokenRecord]:
    """The stored token rows (of ``agent`` only, when given)."""
    return [r for r in _load(node_dir) if agent is None or r.agent == agent]


def check(rows: list[TokenRecord], token: str, *, agent: str | None, now: dt.datetime) -> TokenRecord:
    """Verify ``token`` against ``rows`` (see :func:`verify`)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError("bearer token too long", reason="TOKEN_INVALID")
    m = _TOKEN_RE.match(token)
    if not m:
        raise AuthenticationError("not an Accord agent token", reason="TOKEN_INVALID")
    token_id, secret = m.groups()
    digest = hashlib.sha256(secret.encode()).hexdigest()
    for r in rows:
        if r.id == token_id:
            if not hmac.compare_digest(r.secret_sha256, digest):
                break
            if r.revoked_at:
                raise AuthenticationError("the token was revoked", reason="TOKEN_REVOKED")
            if r.expired(now):
                raise AuthenticationError("the token has expired", reason="TOKEN_EXPIRED")
            if agent is not None and r.agent != agent:
                break  # a token of another agent is no token for this one
            return r
    raise AuthenticationError("unknown agent token", reason="TOKEN_INVALID")


def verify(
    node_dir: Path, token: str, *, agent: str | None = None, now: dt.datetime | None = None
) -> TokenRecord:
    """The record of ``token`` when it is live and (if ``agent`` is given) stands for ``agent``.

    Raises:
        AuthenticationError: ``TOKEN_INVALID`` (too long, malformed, unknown id,
            wrong secret, another agent's token), ``TOKEN_REVOKED``, ``TOKEN_EXPIRED``.

    """
    return check(_load(node_dir), token, agent=agent, now=now or dt.datetime.now(dt.UTC))


class TokenBook:
    """A server's view of one node directory's tokens, re-read when the file's mtime changes.

    ``verify`` costs a ``stat`` per call; a token already verified since the file
    last changed is answered from memory (at most :data:`MAX_VERIFIED` kept; its
    expiry is still checked on every call), others cost a SHA-256. Revocation on
    disk is seen at the next call (the file changes, the remembered tokens are
    forgotten).
    """

    MAX_VERIFIED = 1024
    """Most verified tokens remembered between two changes of the token file."""

    def __init__(self, node_dir: Path, *, agent: str | None = None) -> None:
        self.node_dir = Path(node_dir)
        self.agent = agent
        self._stamp: tuple[int, int] | None = None
        self._rows: list[TokenRecord] = []
        self._verified: dict[str, tuple[TokenRecord, dt.datetime]] = {}
        self._lock = threading.Lock()

    def _rows_now(self) -> list[TokenRecord]:
        try:
            st = os.stat(_path(self.node_dir))
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        with self._lock:
            if stamp != self._stamp:
                self._rows = _load(self.node_dir) if stamp != (0, 0) else []
                self._stamp = stamp
                self._verified = {}
            return self._rows

    def verify(self, token: str, *, now: dt.datetime | None = None) -> TokenRecord:
        """:func:`verify` against the cached rows (same errors)."""
        now = now or dt.datetime.now(dt.UTC)
        rows = self._rows_now()
        verified = self._verified
        hit = verified.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        record = check(rows, token, agent=self.agent, now=now)
        with self._lock:
            if verified is self._verified:  # not forgotten by a file change meanwhile
                if len(verified) >= self.MAX_VERIFIED:
                    verified.clear()
                verified[token] = (record, dt.datetime.fromisoformat(record.expires_at))
        return record
