"""Nodes built to break the protocol, from substituted parts (test code only).

The conformance and security suites must be shown to *fail* against a node
that misbehaves. Such nodes are never a production switch: each behaviour
here is a :class:`federation.node.Node` subclass that overrides one seam
(``_verify_session``, ``_decide``, ``_gate``, ``_log_disclosure``,
``_open_payload``), and a
node process is started from this module instead of ``accord node start``::

    python -m interop_tests.misbehaving --behaviour skip_gate --behaviour bad_receipt --dir D

Behaviours:
    ``skip_gate``: release everything the provider agent offers (no MNI gate);
        the ledger names what actually crossed.
    ``ignore_policy``: release the requested fields even when policy denies.
    ``bad_receipt``: hand out receipts whose leaf index is off by one.
    ``skip_presentation_check``: accept any presentation whose challenge is
        fresh (no signature, issuer, status or validity check).
    ``type_blind_signatures``: accept a signed payload whose signature was
        made for any v1 payload type (no domain separation), and parse it as
        whatever the field expects.
    ``trusting_requester``: as a requester, bind a provider's receipt to nothing
        (the logged entry is parsed but never compared with the exchange).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from credentials import public_key_from_did_key
from federation.node import Node, now_utc

__all__ = ["BEHAVIOURS", "misbehaving_process", "node_class"]


class SkipGate(Node):
    """Releases everything the provider agent offers: no MNI gate."""

    def _gate(self, records, decision):  # noqa: D102
        gate, _, _, _ = super()._gate(records, decision)
        released = tuple(sorted({k for r in records for k in r}))  # what actually crosses
        return gate, records, (), released


class IgnorePolicy(Node):
    """Turns every denial into an allow of the requested fields."""

    def _decide(self, peer, sess, request, contract, now):  # noqa: D102
        decision = super()._decide(peer, sess, request, contract, now)
        if decision.allow:
            return decision
        return dataclasses.replace(decision, allow=True, released_fields=tuple(request.fields))


class BadReceipt(Node):
    """Hands out receipts for the wrong leaf (index + 1)."""

    async def _log_disclosure(self, entry):  # noqa: D102
        written = await super()._log_disclosure(entry)
        return dataclasses.replace(
            written, receipt=dataclasses.replace(written.receipt, index=written.receipt.index + 1)
        )


class SkipPresentationCheck(Node):
    """Opens a session for any presentation: the claims are taken as written."""

    async def _verify_session(self, peer, vp: dict[str, Any], challenge: str):  # noqa: D102
        vcs = vp.get("verifiableCredential")
        cred = (vcs if isinstance(vcs, list) else [vcs])[0] or {}
        holder = vp["holder"]
        sess = self.sessions.create(
            peer_org=peer.org_did,
            agent_did=holder,
            agent_public_key=public_key_from_did_key(holder),
            claims=dict(cred.get("credentialSubject", {})),
            credential_id=cred.get("id", ""),
        )
        return sess, self._effective_trust(peer.org_did, None, now_utc())


class TypeBlindSignatures(Node):
    """Checks signatures without binding the payload type: a signature for any v1 message is taken."""

    def _open_payload(self, signed, kind, public_key, *, signer, field):  # noqa: D102
        from credentials import CredentialError, verify_ed25519
        from federation.errors import AuthenticationError
        from federation.signing import pae

        for name in ("RequestBody", "ExchangeEnvelope", "SessionPossession"):
            try:
                verify_ed25519(
                    public_key, signed.signature, pae(f"accord.federation.v1.{name}", signed.payload)
                )
                break
            except CredentialError:
                continue
        else:
            raise AuthenticationError(
                "signature does not verify",
                reason="BAD_ORG_SIGNATURE" if signer == "org" else "BAD_AGENT_SIGNATURE",
            )
        return self.payloads.decode(signed, kind)


class TrustingRequester(Node):
    """As a requester: takes any receipt that verifies, whatever entry it proves.

    The substituted part is the receipt binding (:func:`federation.receipts.bind_entry`,
    replaced in this node process only): the entry is parsed, never compared.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from federation import receipts
        from ledger import DisclosureEntry

        super().__init__(*args, **kwargs)
        receipts.bind_entry = lambda entry_bytes, expected: DisclosureEntry.from_canonical_bytes(entry_bytes)


#: behaviour name -> the Node subclass that implements it
BEHAVIOURS: dict[str, type[Node]] = {
    "skip_gate": SkipGate,
    "ignore_policy": IgnorePolicy,
    "bad_receipt": BadReceipt,
    "skip_presentation_check": SkipPresentationCheck,
    "type_blind_signatures": TypeBlindSignatures,
    "trusting_requester": TrustingRequester,
}


def node_class(behaviours: list[str] | tuple[str, ...]) -> type[Node]:
    """A Node class combining the named behaviours (the plain Node for none).

    Raises:
        ValueError: an unknown behaviour name.

    """
    unknown = sorted(set(behaviours) - set(BEHAVIOURS))
    if unknown:
        raise ValueError(f"unknown behaviour(s) {unknown}; known: {sorted(BEHAVIOURS)}")
    if not behaviours:
        return Node
    bases = tuple(BEHAVIOURS[b] for b in dict.fromkeys(behaviours))
    return type("Misbehaving_" + "_".join(dict.fromkeys(behaviours)), bases, {})


def misbehaving_process(directory: Path, behaviours: list[str] | tuple[str, ...]):
    """A :class:`federation.supervisor.NodeProcess` serving ``directory`` with ``behaviours``.

    Not started: call ``.start()``. Raises ValueError for an unknown behaviour.
    """
    from federation.supervisor import NodeProcess

    node_class(behaviours)  # fail fast on a typo
    cmd = [sys.executable, "-m", "interop_tests.misbehaving", "--dir", str(directory)]
    for b in behaviours:
        cmd += ["--behaviour", b]
    return NodeProcess(Path(directory), command=cmd)


def main(argv: list[str] | None = None) -> None:
    """Serve a node directory with the named behaviours until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m interop_tests.misbehaving", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="node directory")
    parser.add_argument("--behaviour", action="append", default=[], choices=sorted(BEHAVIOURS))
    args = parser.parse_args(argv)
    from federation.observability import configure_logging
    from federation.server import run

    configure_logging(json_logs=False)
    asyncio.run(run(args.dir.resolve(), node_cls=node_class(args.behaviour)))


if __name__ == "__main__":
    main()
