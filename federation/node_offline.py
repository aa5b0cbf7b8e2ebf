"""Helpers for offline operator commands that need the node's trust anchors."""

from __future__ import annotations

from credentials import StaticKeyResolver, did_key_resolver
from federation.identity import NodeIdentity
from federation.peers import PeerRegistry


def key_resolver(identity: NodeIdentity) -> StaticKeyResolver:
    """Resolver for this org's and every pinned peer's organization keys (plus did:key)."""
    mapping = {identity.verification_method: identity.org_key.public_key}
    for b in PeerRegistry.load(identity.paths.peers):
        mapping[b.verification_method] = b.public_key
    return StaticKeyResolver(mapping, fallback=did_key_resolver)
