"""Which local agent is calling the gateway: bearer tokens, stored hashed in the node directory.

The gateway listens on loopback only, and each request carries
``Authorization: Bearer <token>``. A token is minted for one registered
agent by ``accord a2a token --agent NAME`` (printed once); the node
directory keeps only its SHA-256 (``a2a/tokens.json``, mode 0600), so
reading the directory does not give a token. The gateway then acts as that
agent through its own node's AgentService with the agent's wallet, which
never leaves the node directory.

This is the gateway's interim token store: when per-agent tokens from
``accord agent token`` (``federation.agent_tokens``) are available, the
gateway takes them through :class:`TokenCheck` instead (one function to swap).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Protocol

from federation.errors import AuthenticationError, NotFoundError
from federation.paths import make_private_dir, write_private

MAX_TOKENS = 4096
"""Most tokens the store holds (one line per agent and minting)."""


class TokenCheck(Protocol):
    """Maps a presented bearer token to a local agent name (raises when it maps to none)."""

    def agent_for(self, token: str) -> str:
        """The agent name for ``token``.

        Raises:
            AuthenticationError: ``A2A_TOKEN_INVALID``.
        """


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class GatewayTokens:
    """The token store of one node directory (module docstring)."""

    def __init__(self, node_dir: Path) -> None:
        self.node_dir = Path(node_dir)
        self.path = self.node_dir / "a2a" / "tokens.json"
        self._by_digest: dict[str, str] = {}
        self._mtime = 0
        self.reload()

    def reload(self) -> None:
        """Re-read the store (missing = no tokens)."""
        try:
            self._mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime = 0
            self._by_digest = {}
            return
        data = json.loads(self.path.read_text())
        self._by_digest = {str(k): str(v) for k, v in data.items()}

    def _changed(self) -> bool:
        try:
            return self.path.stat().st_mtime_ns != self._mtime
        except FileNotFoundError:
            return False

    def mint(self, agent: str) -> str:
        """Mint a token for registered agent ``agent``; returns it (shown once).

        Raises:
            NotFoundError: ``UNKNOWN_AGENT`` — no wallet ``agents/<agent>.json``.
            AuthenticationError: ``A2A_TOKEN_INVALID`` — the store is full.

        """
        if not (self.node_dir / "agents" / f"{agent}.json").is_file():
            raise NotFoundError(f"no registered agent {agent!r} in {self.node_dir}", reason="UNKNOWN_AGENT")
        if len(self._by_digest) >= MAX_TOKENS:
            raise AuthenticationError("token store is full", reason="A2A_TOKEN_INVALID")
        token = "a2a_" + secrets.token_urlsafe(32)
        self._by_digest[_digest(token)] = agent
        make_private_dir(self.path.parent)
        write_private(self.path, json.dumps(self._by_digest, indent=1, sort_keys=True))
        return token

    def agent_for(self, token: str) -> str:
        """The agent a token was minted for.

        Raises:
            AuthenticationError: ``A2A_TOKEN_INVALID`` — unknown or malformed token.

        """
        if not token or len(token) > 256:
            raise AuthenticationError("missing or malformed bearer token", reason="A2A_TOKEN_INVALID")
        # looked up by SHA-256 of a 256-bit random token: timing reveals nothing usable about a token
        agent = self._by_digest.get(_digest(token))
        if agent is None and self._changed():  # minted since the store was read
            self.reload()
            agent = self._by_digest.get(_digest(token))
        if agent is not None:
            return agent
        raise AuthenticationError("unknown bearer token", reason="A2A_TOKEN_INVALID")
