"""Helpers for offline operator commands that need the node's trust anchors."""

from __future__ import annotations

from credentials import StaticKeyResolver, did_key_resolver
from federation.identity import NodeIdentity
from federation.peers import PeerRegistry


def key_resolver(identity: NodeIdentity) -> StaticKeyResolver:
    """Resolver for this org's and every pinned peer's organization keys, current and retired, and did:key."""
    from federation.rotation import key_mapping

    mapping = key_mapping(identity, PeerRegistry.load(identity.paths.peers))
    return StaticKeyResolver(mapping, fallback=did_key_resolver)
