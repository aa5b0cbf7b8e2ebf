"""The node's published Bitstring Status List credentials (W3C BSL 1.0).

Each organization publishes two lists, ``revocation`` and ``suspension``,
at ``https://<org>.accord.test/status/<purpose>`` (served over the
FederationService ``GetStatusList`` RPC, not over HTTP). Every agent holds
one index in both; ``accord agent revoke`` / ``suspend`` flip its bit.
The signed list credential is rebuilt only when a bit changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from credentials import StatusList, issue_credential, status_entry, status_list_credential
from federation.config import DOMAIN_SUFFIX

PURPOSES = ("revocation", "suspension")
LIST_LENGTH = 131072  # entries (16 KiB bitstring, the spec's minimum for herd privacy)


class StatusListPublisher:
    """Builds and signs this node's status list credentials from the agent table."""

    def __init__(self, identity: Any, store: Any) -> None:
        self._identity = identity
        self._store = store
        self._cache: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}

    @staticmethod
    def url_for(org_name: str, purpose: str) -> str:
        """The status list credential URL of an organization."""
        return f"https://{org_name}.{DOMAIN_SUFFIX}/status/{purpose}"

    def entries_for(self, index: int) -> list[dict[str, Any]]:
        """``credentialStatus`` entries (both purposes) for an agent's index."""
        org = self._identity.config.org_name
        return [
            status_entry(list_credential_id=self.url_for(org, p), index=index, purpose=p) for p in PURPOSES
        ]

    def credential(self, purpose: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
        """The signed status list credential for ``purpose``.

        Raises:
            ValueError: unknown purpose.

        """
        if purpose not in PURPOSES:
            raise ValueError(f"unknown status purpose {purpose!r}")
        attr = "revoked" if purpose == "revocation" else "suspended"
        set_bits = tuple(a.status_index for a in self._store.agents() if getattr(a, attr))
        hit = self._cache.get(purpose)
        if hit is not None and hit[0] == set_bits:
            return hit[1]
        bits = StatusList(length=LIST_LENGTH)
        for i in set_bits:
            bits.set(i, True)
        now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
        org = self._identity.config.org_name
        unsigned = status_list_credential(
            issuer=self._identity.org_did,
            credential_id=self.url_for(org, purpose),
            purpose=purpose,
            status_list=bits,
            valid_from=now,
        )
        signed = issue_credential(
            unsigned, key=self._identity.org_key, verification_method=self._identity.verification_method
        )
        self._cache[purpose] = (set_bits, signed)
        return signed

    def credential_for_url(self, url: str) -> dict[str, Any] | None:
        """This node's own list for a URL, or None when the URL is not ours."""
        org = self._identity.config.org_name
        for p in PURPOSES:
            if url == self.url_for(org, p):
                return self.credential(p)
        return None
