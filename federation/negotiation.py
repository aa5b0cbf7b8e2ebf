"""Version and algorithm negotiation through ``NodeInfo`` (docs/spec/accord-v1.md §5).

A node advertises what it speaks in ``NodeInfo`` (protocol versions, VC
Data Integrity cryptosuites, signature algorithms, ledger formats,
optional features). A requester reads its peer's ``NodeInfo`` before the
first session (:func:`check_peer_info`) and refuses a peer it cannot speak
with a precise reason, before any credential is presented.
"""

from __future__ import annotations

from federation.errors import FederationError
from federation.pb import federation_pb2 as pb
from federation.signing import FAMILY, SUPPORTED_VERSIONS

#: Protocol versions, as advertised (``accord.federation.v1``).
PROTOCOL_VERSIONS: tuple[str, ...] = tuple(f"{FAMILY}.{v}" for v in SUPPORTED_VERSIONS)
#: W3C VC Data Integrity cryptosuites this node verifies and issues.
CRYPTOSUITES: tuple[str, ...] = ("eddsa-rdfc-2022", "eddsa-jcs-2022")
#: SignedPayload signature algorithms (RFC 8032 Ed25519, pure).
SIGNATURE_ALGORITHMS: tuple[str, ...] = ("ed25519",)
#: Ledger formats: C2SP tlog-checkpoint signed notes, C2SP tlog-proof
#: receipts, RFC 9162 SHA-256 Merkle trees. A requester needs all three to
#: verify a provider's receipt.
LEDGER_FORMATS: tuple[str, ...] = ("c2sp-tlog-checkpoint", "c2sp-tlog-proof", "rfc9162-sha256")
#: Optional features (additions after v1) this node understands: "accord.key-rotation.v1"
#: = it serves FederationService.AnnounceKeyRotation (federation.rotation).
FEATURES: tuple[str, ...] = ("accord.key-rotation.v1",)
#: Most entries read from each NodeInfo list (a peer's longer list is cut here).
MAX_ADVERTISED = 64


def fill_node_info(info: pb.NodeInfo) -> pb.NodeInfo:
    """Set the negotiation fields of ``info`` to what this implementation speaks; returns ``info``."""
    del info.protocol_versions[:]
    info.protocol_versions.extend(PROTOCOL_VERSIONS)
    info.cryptosuites.extend(CRYPTOSUITES)
    info.signature_algorithms.extend(SIGNATURE_ALGORITHMS)
    info.ledger_formats.extend(LEDGER_FORMATS)
    info.features.extend(FEATURES)
    return info


def _refuse(reason: str, what: str, theirs: list[str], ours: tuple[str, ...]) -> FederationError:
    shown = ",".join(t[:64] for t in theirs[:8])
    return FederationError(
        f"peer speaks no {what} this node supports (peer: {shown or 'none'}; ours: {', '.join(ours)})",
        reason=reason,
        status="FAILED_PRECONDITION",
        metadata={"peer": shown, "supported": ",".join(ours)},
    )


def check_peer_info(info: pb.NodeInfo) -> None:
    """Refuse a peer this node cannot speak with (R-NEG-3).

    Checked in this order: a common protocol version, a common cryptosuite,
    a common signature algorithm, every ledger format in
    :data:`LEDGER_FORMATS`.

    Raises:
        FederationError: FAILED_PRECONDITION with reason
            ``UNSUPPORTED_VERSION``, ``UNSUPPORTED_CRYPTOSUITE``,
            ``UNSUPPORTED_ALGORITHM`` or ``UNSUPPORTED_LEDGER_FORMAT``.

    """
    versions = list(info.protocol_versions[:MAX_ADVERTISED])
    if not set(versions) & set(PROTOCOL_VERSIONS):
        raise _refuse("UNSUPPORTED_VERSION", "protocol version", versions, PROTOCOL_VERSIONS)
    suites = list(info.cryptosuites[:MAX_ADVERTISED])
    if not set(suites) & set(CRYPTOSUITES):
        raise _refuse("UNSUPPORTED_CRYPTOSUITE", "cryptosuite", suites, CRYPTOSUITES)
    algs = list(info.signature_algorithms[:MAX_ADVERTISED])
    if not set(algs) & set(SIGNATURE_ALGORITHMS):
        raise _refuse("UNSUPPORTED_ALGORITHM", "signature algorithm", algs, SIGNATURE_ALGORITHMS)
    formats = list(info.ledger_formats[:MAX_ADVERTISED])
    if not set(LEDGER_FORMATS) <= set(formats):
        raise _refuse("UNSUPPORTED_LEDGER_FORMAT", "complete set of ledger formats", formats, LEDGER_FORMATS)
