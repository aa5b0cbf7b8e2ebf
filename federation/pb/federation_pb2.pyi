from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeInfo(_message.Message):
    __slots__ = ("org_did", "org_name", "endpoint", "ledger_vkey", "ledger_origin", "protocol_versions", "software", "cryptosuites", "signature_algorithms", "ledger_formats", "features")
    ORG_DID_FIELD_NUMBER: _ClassVar[int]
    ORG_NAME_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    LEDGER_VKEY_FIELD_NUMBER: _ClassVar[int]
    LEDGER_ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    CRYPTOSUITES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALGORITHMS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FORMATS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    org_did: str
    org_name: str
    endpoint: str
    ledger_vkey: str
    ledger_origin: str
    protocol_versions: _containers.RepeatedScalarFieldContainer[str]
    software: str
    cryptosuites: _containers.RepeatedScalarFieldContainer[str]
    signature_algorithms: _containers.RepeatedScalarFieldContainer[str]
    ledger_formats: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, org_did: _Optional[str] = ..., org_name: _Optional[str] = ..., endpoint: _Optional[str] = ..., ledger_vkey: _Optional[str] = ..., ledger_origin: _Optional[str] = ..., protocol_versions: _Optional[_Iterable[str]] = ..., software: _Optional[str] = ..., cryptosuites: _Optional[_Iterable[str]] = ..., signature_algorithms: _Optional[_Iterable[str]] = ..., ledger_formats: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class SignedPayload(_message.Message):
    __slots__ = ("payload_type", "payload", "signature")
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload_type: str
    payload: bytes
    signature: bytes
    def __init__(self, payload_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ExchangeEnvelope(_message.Message):
    __slots__ = ("session_id", "request", "requester_org")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_ORG_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    request: SignedPayload
    requester_org: str
    def __init__(self, session_id: _Optional[str] = ..., request: _Optional[_Union[SignedPayload, _Mapping]] = ..., requester_org: _Optional[str] = ...) -> None: ...

class SessionPossession(_message.Message):
    __slots__ = ("agent_did", "challenge", "peer_org")
    AGENT_DID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PEER_ORG_FIELD_NUMBER: _ClassVar[int]
    agent_did: str
    challenge: str
    peer_org: str
    def __init__(self, agent_did: _Optional[str] = ..., challenge: _Optional[str] = ..., peer_org: _Optional[str] = ...) -> None: ...

class RequestBody(_message.Message):
    __slots__ = ("contract_id", "purpose", "resource", "subject", "fields", "provider_org", "agent_did", "nonce", "timestamp_ms", "aggregate_json")
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    AGENT_DID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_JSON_FIELD_NUMBER: _ClassVar[int]
    contract_id: str
    purpose: str
    resource: str
    subject: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    provider_org: str
    agent_did: str
    nonce: str
    timestamp_ms: int
    aggregate_json: str
    def __init__(self, contract_id: _Optional[str] = ..., purpose: _Optional[str] = ..., resource: _Optional[str] = ..., subject: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., provider_org: _Optional[str] = ..., agent_did: _Optional[str] = ..., nonce: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., aggregate_json: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("tlog_proof", "entry", "leaf_index", "leaf_hash")
    TLOG_PROOF_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    tlog_proof: str
    entry: bytes
    leaf_index: int
    leaf_hash: bytes
    def __init__(self, tlog_proof: _Optional[str] = ..., entry: _Optional[bytes] = ..., leaf_index: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("disclosure_id", "decision", "released_fields", "stripped_fields", "payload_json", "record_count", "reasons", "obligations", "effective_trust", "decision_hash", "receipt")
    DISCLOSURE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    STRIPPED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    OBLIGATIONS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TRUST_FIELD_NUMBER: _ClassVar[int]
    DECISION_HASH_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    disclosure_id: str
    decision: str
    released_fields: _containers.RepeatedScalarFieldContainer[str]
    stripped_fields: _containers.RepeatedScalarFieldContainer[str]
    payload_json: bytes
    record_count: int
    reasons: _containers.RepeatedScalarFieldContainer[str]
    obligations: _containers.RepeatedScalarFieldContainer[str]
    effective_trust: float
    decision_hash: str
    receipt: Receipt
    def __init__(self, disclosure_id: _Optional[str] = ..., decision: _Optional[str] = ..., released_fields: _Optional[_Iterable[str]] = ..., stripped_fields: _Optional[_Iterable[str]] = ..., payload_json: _Optional[bytes] = ..., record_count: _Optional[int] = ..., reasons: _Optional[_Iterable[str]] = ..., obligations: _Optional[_Iterable[str]] = ..., effective_trust: _Optional[float] = ..., decision_hash: _Optional[str] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ...) -> None: ...

class KeyRotationStep(_message.Message):
    __slots__ = ("statement_json", "bundle_json")
    STATEMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_JSON_FIELD_NUMBER: _ClassVar[int]
    statement_json: bytes
    bundle_json: bytes
    def __init__(self, statement_json: _Optional[bytes] = ..., bundle_json: _Optional[bytes] = ...) -> None: ...

class AnnounceKeyRotationRequest(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[KeyRotationStep]
    def __init__(self, steps: _Optional[_Iterable[_Union[KeyRotationStep, _Mapping]]] = ...) -> None: ...

class AnnounceKeyRotationResponse(_message.Message):
    __slots__ = ("fingerprint", "outcome")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    outcome: str
    def __init__(self, fingerprint: _Optional[str] = ..., outcome: _Optional[str] = ...) -> None: ...

class GetAgentCardsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAgentCardsResponse(_message.Message):
    __slots__ = ("agent_card_json",)
    AGENT_CARD_JSON_FIELD_NUMBER: _ClassVar[int]
    agent_card_json: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, agent_card_json: _Optional[_Iterable[bytes]] = ...) -> None: ...

class QueryEntriesRequest(_message.Message):
    __slots__ = ("contract_id", "purpose", "field", "decision", "kind", "limit")
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    contract_id: str
    purpose: str
    field: str
    decision: str
    kind: str
    limit: int
    def __init__(self, contract_id: _Optional[str] = ..., purpose: _Optional[str] = ..., field: _Optional[str] = ..., decision: _Optional[str] = ..., kind: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class LoggedEntry(_message.Message):
    __slots__ = ("leaf_index", "entry", "inclusion_proof")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    entry: bytes
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., entry: _Optional[bytes] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class QueryEntriesResponse(_message.Message):
    __slots__ = ("signed_checkpoint", "entries")
    SIGNED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    signed_checkpoint: str
    entries: _containers.RepeatedCompositeFieldContainer[LoggedEntry]
    def __init__(self, signed_checkpoint: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[LoggedEntry, _Mapping]]] = ...) -> None: ...

class GetNodeInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetChallengeRequest(_message.Message):
    __slots__ = ("agent_did",)
    AGENT_DID_FIELD_NUMBER: _ClassVar[int]
    agent_did: str
    def __init__(self, agent_did: _Optional[str] = ...) -> None: ...

class GetChallengeResponse(_message.Message):
    __slots__ = ("challenge", "domain", "expires_at")
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    challenge: str
    domain: str
    expires_at: int
    def __init__(self, challenge: _Optional[str] = ..., domain: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class OpenSessionRequest(_message.Message):
    __slots__ = ("presentation_json",)
    PRESENTATION_JSON_FIELD_NUMBER: _ClassVar[int]
    presentation_json: bytes
    def __init__(self, presentation_json: _Optional[bytes] = ...) -> None: ...

class OpenSessionResponse(_message.Message):
    __slots__ = ("session_id", "expires_at", "effective_trust")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TRUST_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    expires_at: int
    effective_trust: float
    def __init__(self, session_id: _Optional[str] = ..., expires_at: _Optional[int] = ..., effective_trust: _Optional[float] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: SignedPayload
    def __init__(self, envelope: _Optional[_Union[SignedPayload, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    def __init__(self, outcome: _Optional[_Union[Outcome, _Mapping]] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("signed_checkpoint", "cosignatures")
    SIGNED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURES_FIELD_NUMBER: _ClassVar[int]
    signed_checkpoint: str
    cosignatures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, signed_checkpoint: _Optional[str] = ..., cosignatures: _Optional[_Iterable[str]] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("leaf_index", "tree_size")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("size1", "size2")
    SIZE1_FIELD_NUMBER: _ClassVar[int]
    SIZE2_FIELD_NUMBER: _ClassVar[int]
    size1: int
    size2: int
    def __init__(self, size1: _Optional[int] = ..., size2: _Optional[int] = ...) -> None: ...

class ProofResponse(_message.Message):
    __slots__ = ("hashes", "signed_checkpoint")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    SIGNED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    signed_checkpoint: str
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ..., signed_checkpoint: _Optional[str] = ...) -> None: ...

class GetStatusListRequest(_message.Message):
    __slots__ = ("purpose",)
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    def __init__(self, purpose: _Optional[str] = ...) -> None: ...

class GetStatusListResponse(_message.Message):
    __slots__ = ("credential_json",)
    CREDENTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    credential_json: bytes
    def __init__(self, credential_json: _Optional[bytes] = ...) -> None: ...

class AddCheckpointRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    def __init__(self, body: _Optional[bytes] = ...) -> None: ...

class AddCheckpointResponse(_message.Message):
    __slots__ = ("status", "body")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    status: int
    body: bytes
    def __init__(self, status: _Optional[int] = ..., body: _Optional[bytes] = ...) -> None: ...

class BeginSessionRequest(_message.Message):
    __slots__ = ("agent_did", "peer")
    AGENT_DID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    agent_did: str
    peer: str
    def __init__(self, agent_did: _Optional[str] = ..., peer: _Optional[str] = ...) -> None: ...

class BeginSessionResponse(_message.Message):
    __slots__ = ("local_challenge", "peer_challenge", "peer_domain", "peer_org")
    LOCAL_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PEER_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PEER_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PEER_ORG_FIELD_NUMBER: _ClassVar[int]
    local_challenge: str
    peer_challenge: str
    peer_domain: str
    peer_org: str
    def __init__(self, local_challenge: _Optional[str] = ..., peer_challenge: _Optional[str] = ..., peer_domain: _Optional[str] = ..., peer_org: _Optional[str] = ...) -> None: ...

class AgentOpenSessionRequest(_message.Message):
    __slots__ = ("agent_did", "peer_org", "possession", "presentation_json")
    AGENT_DID_FIELD_NUMBER: _ClassVar[int]
    PEER_ORG_FIELD_NUMBER: _ClassVar[int]
    POSSESSION_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_JSON_FIELD_NUMBER: _ClassVar[int]
    agent_did: str
    peer_org: str
    possession: SignedPayload
    presentation_json: bytes
    def __init__(self, agent_did: _Optional[str] = ..., peer_org: _Optional[str] = ..., possession: _Optional[_Union[SignedPayload, _Mapping]] = ..., presentation_json: _Optional[bytes] = ...) -> None: ...

class AgentOpenSessionResponse(_message.Message):
    __slots__ = ("session_id", "expires_at", "effective_trust")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TRUST_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    expires_at: int
    effective_trust: float
    def __init__(self, session_id: _Optional[str] = ..., expires_at: _Optional[int] = ..., effective_trust: _Optional[float] = ...) -> None: ...

class SendRequestRequest(_message.Message):
    __slots__ = ("session_id", "request")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    request: SignedPayload
    def __init__(self, session_id: _Optional[str] = ..., request: _Optional[_Union[SignedPayload, _Mapping]] = ...) -> None: ...

class SendRequestResponse(_message.Message):
    __slots__ = ("outcome", "received_leaf_index", "receipt_verified", "content_labels")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LABELS_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    received_leaf_index: int
    receipt_verified: bool
    content_labels: _containers.RepeatedCompositeFieldContainer[ContentLabel]
    def __init__(self, outcome: _Optional[_Union[Outcome, _Mapping]] = ..., received_leaf_index: _Optional[int] = ..., receipt_verified: _Optional[bool] = ..., content_labels: _Optional[_Iterable[_Union[ContentLabel, _Mapping]]] = ...) -> None: ...

class ContentLabel(_message.Message):
    __slots__ = ("record", "field", "verdict", "findings", "quarantined")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    record: int
    field: str
    verdict: str
    findings: _containers.RepeatedScalarFieldContainer[str]
    quarantined: bool
    def __init__(self, record: _Optional[int] = ..., field: _Optional[str] = ..., verdict: _Optional[str] = ..., findings: _Optional[_Iterable[str]] = ..., quarantined: _Optional[bool] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("node", "peers", "agents", "contracts", "ledger_size", "checkpoint")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    CONTRACTS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    peers: _containers.RepeatedScalarFieldContainer[str]
    agents: int
    contracts: _containers.RepeatedScalarFieldContainer[str]
    ledger_size: int
    checkpoint: str
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., peers: _Optional[_Iterable[str]] = ..., agents: _Optional[int] = ..., contracts: _Optional[_Iterable[str]] = ..., ledger_size: _Optional[int] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("peers", "agents", "contracts")
    PEERS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    CONTRACTS_FIELD_NUMBER: _ClassVar[int]
    peers: int
    agents: int
    contracts: int
    def __init__(self, peers: _Optional[int] = ..., agents: _Optional[int] = ..., contracts: _Optional[int] = ...) -> None: ...
