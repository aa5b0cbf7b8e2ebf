"""The A2A gateway: organizations' agents speak A2A to each other through their Accord nodes.

* :mod:`federation.a2a.config` — the ``[a2a]`` section of ``node.toml`` (exposed agents).
* :mod:`federation.a2a.cards` — Agent Cards whose skills are contract purposes,
  signed with the organization key (JWS, A2A "Agent Card Signing"), verified
  against pinned partners' keys.
* :mod:`federation.a2a.messages` — an A2A message to an Accord request and an
  outcome back to an A2A task; bounds and the free-text hook.
* :mod:`federation.a2a.errors` — the one table from Accord reasons to A2A errors.
* :mod:`federation.a2a.gateway` — ``accord a2a serve``: the loopback A2A
  (JSON-RPC over HTTP, a2a-sdk server) endpoint local agents talk to.

This package's ``__init__`` imports nothing: the node imports the config
model without loading a2a-sdk. See docs/agents.md ("A2A").
"""
