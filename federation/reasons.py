"""The one table from reason codes to gRPC status codes (STYLE principle 5).

Every error of Accord carries a stable reason code (``google.rpc.ErrorInfo``
reason on the wire); :data:`STATUS_BY_REASON` says which gRPC status each
one travels under. :mod:`federation.wire` reads it for every error it
translates, whichever package raised it; a provider's logged refusals take
their status from it too. The table names statuses as strings, so this
module stays free of gRPC and the node can use it.

``tests/nodes/test_reason_table.py`` walks the source (exception classes,
``reason=`` arguments, the Rego policy's deny reasons, the auditor's) and
fails if a reason raised anywhere is missing here. A reason that is data —
a contract's own Rego hook may deny with a code of its own, a peer running
other software may answer with one — is not in the table: it travels
under the status of its error class (:class:`federation.errors.DeniedError`:
``PERMISSION_DENIED``), or the status the peer sent.

One reason has two statuses by the spec's own table (docs/spec/accord-v1.md
§5, §8): ``UNSUPPORTED_CRYPTOSUITE`` is ``INVALID_ARGUMENT`` for a
credential proof (this table) and ``FAILED_PRECONDITION`` at negotiation,
where :mod:`federation.negotiation` passes the status explicitly. An
explicit ``status=`` is allowed only in the modules listed in
``EXPLICIT_STATUS_MODULES`` (checked by the same test).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["EXPLICIT_STATUS_MODULES", "STATUS_BY_REASON", "STATUSES", "status_for"]

_BY_STATUS: dict[str, tuple[str, ...]] = {
    "INVALID_ARGUMENT": (
        # the operator console (federation.console; HTTP 400)
        "UNKNOWN_ACTION",
        # an A2A message to the gateway (federation.a2a; docs/agents.md "A2A")
        "A2A_MALFORMED_MESSAGE",
        "A2A_MESSAGE_TOO_LARGE",
        "A2A_PART_TOO_LARGE",
        "A2A_TOO_MANY_PARTS",
        "A2A_PART_UNSUPPORTED",
        "A2A_UNKNOWN_SKILL",
        # signed payloads (federation.signing; docs/spec/accord-v1.md §4.4)
        "PAYLOAD_TOO_LARGE",
        "WRONG_PAYLOAD_TYPE",
        "MALFORMED_PAYLOAD",
        "UNKNOWN_FIELD",
        "POSSESSION_MISMATCH",
        # malformed input from the caller (request, presentation, dataset spec, CLI argument)
        "MALFORMED_REQUEST",
        "MALFORMED_IDENTIFIER",
        "WRONG_PROVIDER",
        "BAD_PROOF_REQUEST",
        "INVALID_PREDICATE",
        "INVALID_QUERY_KIND",
        "INVALID_DATASET",
        "BAD_DATASET",
        "DATASET_EXISTS",
        "UNKNOWN_RECORD",
        "AGENT_EXISTS",
        "BAD_NAME",
        "BAD_ROLE",
        "BAD_SCOPE",
        "NO_SCOPES",
        "BAD_TIME",
        "BAD_TRUST_TIER",
        "BAD_VALIDITY",
        "IDEMPOTENCY_KEY_CONFLICT",
        # MCP / local adapters: a tool argument over its bound (federation.mcp.catalog)
        "ARGUMENT_TOO_LARGE",
        # credentials: documents that are not well-formed or too big
        "MALFORMED_CREDENTIAL",
        "MALFORMED_KEY",
        "MALFORMED_PROOF",
        "DOCUMENT_TOO_LARGE",
        "DOCUMENT_TOO_COMPLEX",
        "CONTEXT_NOT_ALLOWED",
        "TERM_NOT_ALLOWED",
        "UNKNOWN_CONTEXT",
        "UNDEFINED_TERM",
        "RELATIVE_IRI",
        "UNSUPPORTED_CRYPTOSUITE",  # a credential's proof; at negotiation FAILED_PRECONDITION (below)
        # policy and ledger inputs
        "GATE_PATH_INVALID",
        "MEASURE_INVALID",
        "DECISION_INPUT_INVALID",
        "INVALID_DP_PARAMETERS",
        "INVALID_REPLAY_INPUT",
        "INVALID_SCOPE",
        "TRUST_STATE_INVALID",
        "BUDGET_STATE_INVALID",
        "MALFORMED",
        "MALFORMED_CHECKPOINT",
        "MALFORMED_NOTE",
        "MALFORMED_POLICY",
        "INVALID_ENTRY",
        "INVALID_KEY",
        "INVALID_PROOF",
        "ORIGIN_MISMATCH",
        "UNKNOWN_LOG",
        "TREE_SIZE_OUT_OF_RANGE",
        "ENTRY_NOT_FOUND",
        "ENTRY_NOT_CHECKPOINTED",
        "WITNESS_QUORUM_NOT_MET",
        "LEDGER_CONFIGURATION",
        # issue #15: operator keys and approval decisions (federation.approvals)
        "BAD_OPERATOR_KEY",
        "OPERATOR_EXISTS",
        "BAD_APPROVAL_BATCH",
    ),
    "UNAUTHENTICATED": (
        # the operator console: a session cookie that does not verify (HTTP 401)
        "FORGED_SESSION",
        # the A2A gateway: a partner's signed Agent Card
        "AGENT_CARD_UNPINNED",
        "AGENT_CARD_SIGNATURE_INVALID",
        "UNAUTHENTICATED",
        "UNKNOWN_PEER",
        "BAD_BUNDLE",
        "BAD_CERTIFICATE",
        "BAD_ROTATION",
        "CERTIFICATE_EXPIRED",
        "CERTIFICATE_NOT_CHAINED",
        "NO_CLIENT_CERTIFICATE",
        "PEER_COLLISION",
        "PIN_CHANGE_REFUSED",
        # `peer add --check-did`: the partner's did:web document (federation.didweb)
        "DID_UNRESOLVABLE",
        "DID_MISMATCH",
        "SELF_PEER",
        "NOT_AN_AGENT",
        "NOT_OPERATOR",
        "UNKNOWN_AGENT",
        "UNKNOWN_SESSION",
        "SESSION_EXPIRED",
        "SESSION_TERMINATED",
        "WRONG_CHALLENGE",
        "WRONG_CREDENTIAL_TYPE",
        "BAD_ORG_SIGNATURE",
        "BAD_AGENT_SIGNATURE",
        "REQUESTER_MISMATCH",
        "AGENT_MISMATCH",
        "BAD_NONCE",
        "REPLAYED_REQUEST",
        "STALE_REQUEST",
        # agent bearer tokens of the local HTTP adapters (federation.agent_tokens)
        "TOKEN_INVALID",
        "TOKEN_EXPIRED",
        "TOKEN_REVOKED",
        "TOKEN_MISSING",
        # credentials: does not verify
        "VERIFICATION_FAILED",
        "INVALID_SIGNATURE",
        "UNKNOWN_KEY",
        "WRONG_PROOF_PURPOSE",
        "WRONG_DOMAIN",
        "UNTRUSTED_ISSUER",
        "HOLDER_MISMATCH",
        "EXPIRED",
        "NOT_YET_VALID",
        "REVOKED",
        "SUSPENDED",
        "STATUS_UNAVAILABLE",
        "INVALID_STATUS_LIST",
    ),
    "PERMISSION_DENIED": (
        # the operator console (HTTP 403): a write without the write role, a form without its CSRF token
        "WRITE_ROLE_REQUIRED",
        "CSRF",
        # an operator certificate on the console's CRL; a CRL that does not verify (fail closed)
        "OPERATOR_REVOKED",
        "REVOCATION_LIST_INVALID",
        # accord console revoke-operator: a certificate of another CA
        "NOT_ISSUED_HERE",
        # a free-text A2A part where the contract does not allow free text
        "FREE_TEXT_NOT_ALLOWED",
        # the A2A gateway's reply check: a record field beyond the released set
        "A2A_REPLY_BEYOND_RELEASED",
        "POLICY_DENIED",
        "ENGINE_ERROR",
        # the base policy's deny reasons (policy/rego/accord.rego)
        "EMPTY_REQUEST",
        "MISSING_SCOPE",
        "PARTY_MISMATCH",
        "UNKNOWN_PURPOSE",
        "RESOURCE_NOT_IN_CONTRACT",
        "SUBJECT_NOT_IN_CONTRACT",
        "FIELD_NOT_IN_CONTRACT",
        "TRUST_TOO_LOW",
        "TRUST_BUDGET_EXHAUSTED",
        # aggregate queries and the reconstruction auditor
        "AGGREGATE_NOT_ALLOWED",
        "ID_SET_TOO_LARGE",
        "RECONSTRUCTION_RISK",
        "EMPTY_SELECTION",
        # delegation (Authorization Drift and chain faults)
        "AUTHORIZATION_DRIFT",
        "BAD_DELEGATION",
        "BAD_DELEGATION_SIGNATURE",
        "MALFORMED_DELEGATION",
        "BROKEN_CHAIN",
        "DELEGATION_CYCLE",
        "DELEGATION_TOO_DEEP",
        "DELEGATION_EXPIRED",
        "FOREIGN_ORG",
        # value-level content controls (federation.content; docs/content-controls.md)
        "VALUE_CONSTRAINT_VIOLATED",
        "CONTENT_SCREENING_DENIED",
        # issue #15: approvals, behavioural throttling, onward flow
        "APPROVAL_DENIED",
        "APPROVAL_SIGNATURE_INVALID",
        "NOT_AN_OPERATOR",
        "AGENT_SUSPENDED_ANOMALY",
        "ONWARD_SHARING_FORBIDDEN",
    ),
    "NOT_FOUND": (
        # no such exposed A2A agent at the partner (for this organization)
        "A2A_UNKNOWN_AGENT",
        "NOT_FOUND",
        "UNKNOWN_CONTRACT",
        "UNKNOWN_RESOURCE",
        "UNKNOWN_SUBJECT",
        "NO_CHECKPOINT",
        "NO_WALLET",
        "UNKNOWN_APPROVAL",
        "UNKNOWN_TOKEN",
    ),
    "FAILED_PRECONDITION": (
        # the operator console: off loopback without TLS, a bad [console] table, a retired contract
        "TLS_REQUIRED",
        "CONSOLE_CONFIG",
        "CONTRACT_RETIRED",
        # the console's approval actions: no approver key configured, a request no longer pending
        "NO_APPROVER",
        "NOT_PENDING",
        # operator commands on an agent that cannot be renewed (federation.agents.renew_agent)
        "AGENT_REVOKED",
        "WALLET_MISMATCH",
        # encrypted node keys at rest (federation.identity)
        "KEY_PASSPHRASE_MISSING",
        "KEY_DECRYPT_FAILED",
        # `peer reset-witness` named another size than the witness holds (ledger.Witness.reset_log)
        "WITNESS_STATE_CHANGED",
        # the organization key in a PKCS#11 token (federation.keystore)
        "KEY_STORE_UNAVAILABLE",
        "KEY_NOT_EXPORTABLE",
        # versions and negotiation (docs/spec/accord-v1.md §4.4 step 2, §5)
        "UNSUPPORTED_VERSION",
        "UNSUPPORTED_ALGORITHM",
        "UNSUPPORTED_LEDGER_FORMAT",
        # a contract the node holds is not usable (a refused file, or not in force)
        "CONTRACT_NOT_IN_FORCE",
        "CONTRACT_INVALID",
        "REGO_MODULE_INVALID",
        "NOT_A_PARTY",
        "CONTRACT_UNSIGNED",
        "CONTRACT_SIGNATURE_INVALID",
        "CONTRACT_VERSION_NOT_NEWER",
        # the requester refuses a provider's outcome
        "RECEIPT_MISMATCH",
        "PEER_LOG_INCONSISTENT",
        "OUTCOME_TOO_LARGE",
        # the node's own state or configuration (operator commands; not on the wire)
        "CONFIG_INVALID",
        "METRICS_DISABLED",
        "NODE_NOT_RUNNING",
        "NODE_RUNNING",
        "ADDRESS_IN_USE",
        "STOP_TIMEOUT",
        "SCHEMA_MISMATCH",
        "LEDGER_EXISTS",
        "WORKDIR_IN_USE",
        "INSECURE_BIND",
        "BACKUP_INVALID",
        # replicas (federation.replicas; operator commands)
        "REPLICAS_NEED_POSTGRESQL",
        "BAD_REPLICA",
        # issue #15: a request waiting for, or outlived by, an operator's decision
        "APPROVAL_PENDING",
        "APPROVAL_EXPIRED",
        "APPROVAL_NOT_PENDING",
    ),
    "RESOURCE_EXHAUSTED": (
        "RESOURCE_LIMIT",
        "RATE_LIMITED",
        "SESSION_LIMIT",
        "SESSION_LIMIT_AGENT",
        "SESSION_LIMIT_PEER",
        "CHALLENGE_LIMIT",
        "PRESESSION_RATE_LIMITED",
        "PRIVACY_BUDGET_EXHAUSTED",
        "BUDGET_KEYS_EXHAUSTED",
        "AUDIT_CAPACITY",
        "VERIFICATION_TIMEOUT",
        # issue #15: approvers' hourly cap; behavioural throttling
        "APPROVER_CAP_REACHED",
        "AGENT_THROTTLED",
        "SESSION_THROTTLED",
    ),
    "UNAVAILABLE": (
        "SCREENING_UNAVAILABLE",
        "PEER_UNAVAILABLE",
        "RECEIPTS_UNSETTLED",
        # the node's database is restarting or down (federation.store.as_unavailable); retry later
        "DATABASE_UNAVAILABLE",
    ),
    "INTERNAL": (
        # our fault: logged with a traceback at the node
        "LEDGER_STORAGE",
        "CHECKPOINT_CAS_CONFLICT",
        "EQUIVOCATION",
        "AUDIT_ERROR",
        "AUDIT_COMMIT_REFUSED",
        "INVALID_AUDIT_STATE",
    ),
}

#: modules that may give an error an explicit status (a peer's answer; negotiation; signed payloads)
EXPLICIT_STATUS_MODULES = frozenset(
    {
        "federation/wire.py",
        "federation/negotiation.py",
        "federation/signing.py",
        # the operator console answers HTTP: its errors carry an HTTP status, not a gRPC one
        "federation/console/actions.py",
        "federation/console/app.py",
        "federation/console/auth.py",
    }
)

#: the gRPC status names the table uses
STATUSES = frozenset(_BY_STATUS)


def _build() -> Mapping[str, str]:
    out: dict[str, str] = {}
    for status, reasons in _BY_STATUS.items():
        for reason in reasons:
            if reason in out:
                raise AssertionError(f"reason {reason} is listed under {out[reason]} and {status}")
            out[reason] = status
    return MappingProxyType(out)


#: reason code -> gRPC status code name (e.g. ``"UNKNOWN_SESSION" -> "UNAUTHENTICATED"``)
STATUS_BY_REASON: Mapping[str, str] = _build()


def status_for(reason: str, default: str) -> str:
    """The gRPC status name for ``reason``; ``default`` for a reason that is data (module docstring)."""
    return STATUS_BY_REASON.get(reason, default)
