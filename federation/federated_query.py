"""``accord ledger query --federation``: peers' entries about us, verified offline.

Each pinned peer answers ``QueryEntries`` with the entries of *its* log that
concern crossings with this organization (it never returns anyone else's),
an inclusion proof for each, and the signed checkpoint they are relative to,
with its cosignatures. Here every entry is verified: the checkpoint's log
signature with the peer's ledger vkey from its pinned bundle, at least one
cosignature from a witness we know (our own or another peer's; not the log's
own organization), and the entry's RFC 9162 inclusion proof. An entry is
``verified`` (cosigned checkpoint), ``unwitnessed`` (log-signed only) or
``INVALID``; an unreachable peer is reported, not fatal.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc

from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg


def _verify(bundle: Any, witnesses: dict[str, str], note: str, le: Any) -> str:
    from ledger import NoteVerifier, leaf_hash, open_checkpoint, verify_inclusion
    from ledger.policy import WitnessPolicy

    try:
        signed = open_checkpoint(
            note, [NoteVerifier.from_vkey(bundle.ledger_vkey)], origin=bundle.ledger_origin
        )
        verify_inclusion(
            le.leaf_index,
            signed.checkpoint.size,
            leaf_hash(le.entry),
            list(le.inclusion_proof),
            signed.checkpoint.root,
        )
    except Exception:  # any failure of the peer's evidence
        return "INVALID"
    others = {n: v for n, v in witnesses.items() if n != bundle.org_name}
    if not others:
        return "unwitnessed"
    try:
        policy = WitnessPolicy.k_of_n(1, others, logs=[bundle.ledger_vkey])
        policy.check(signed)
    except Exception:  # no (valid) cosignature from a witness we know
        return "unwitnessed"
    return "verified"


async def _ask(ident: Any, bundle: Any, req: pb.QueryEntriesRequest) -> tuple[Any, Any]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=bundle.ca_certificate_pem.encode(),
        private_key=ident.tls_pem("node.key"),
        certificate_chain=ident.tls_pem("node.pem"),
    )
    async with grpc.aio.secure_channel(bundle.endpoint, creds) as ch:
        try:
            return bundle, await pbg.FederationServiceStub(ch).QueryEntries(req, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return bundle, exc


def query_peers(
    ident: Any,
    *,
    contract_id: str | None,
    purpose: str | None,
    field: str | None,
    decision: str | None,
    kind: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Rows (as ``accord ledger query --json`` prints them) from every pinned peer, each verified."""
    from federation.peers import PeerRegistry

    peers = list(PeerRegistry.load(ident.paths.peers))
    witnesses = {b.org_name: b.witness_vkey for b in peers if b.witness_vkey}
    witnesses[ident.config.org_name] = ident.witness_signer().vkey
    req = pb.QueryEntriesRequest(
        contract_id=contract_id or "",
        purpose=purpose or "",
        field=field or "",
        decision=decision or "",
        kind=kind or "",
        limit=limit,
    )

    async def all_peers():
        return await asyncio.gather(*(_ask(ident, b, req) for b in peers))

    rows: list[dict[str, Any]] = []
    for bundle, resp in asyncio.run(all_peers()):
        if isinstance(resp, grpc.aio.AioRpcError):
            rows.append(
                {
                    "source": bundle.org_name,
                    "verified": f"unreachable ({resp.code().name})",
                    "index": -1,
                    "time": "",
                    "kind": "",
                    "provider_org": "",
                    "requester_org": "",
                    "requester_agent": "",
                    "provider_agent": "",
                    "contract_id": "",
                    "purpose": "",
                    "decision": "",
                    "reason": "",
                    "fields_requested": [],
                    "fields_released": [],
                    "fields_stripped": [],
                    "record_count": 0,
                    "effective_trust": 0.0,
                    "leaf_hash": "",
                    "state": "",
                }
            )
            continue
        from ledger import leaf_hash

        for le in resp.entries:
            row = json.loads(le.entry)
            row.update(
                {
                    "index": le.leaf_index,
                    "leaf_hash": leaf_hash(le.entry).hex(),
                    "state": "",
                    "source": bundle.org_name,
                    "verified": _verify(bundle, witnesses, resp.signed_checkpoint, le),
                }
            )
            rows.append(row)
    return rows
