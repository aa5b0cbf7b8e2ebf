"""Accord policy: contracts, Rego decisions (embedded or OPA), the MNI gate, trust, budgets.

See ``docs/contracts.md`` for the contract format and decision semantics.
"""

from policy.auditor import (
    AuditCommitRefusedError,
    AuditDecision,
    AuditError,
    Auditor,
    AuditState,
    AuditStateError,
    InvalidQueryKindError,
    InvalidScopeError,
    ScopeStatus,
    UnknownRecordError,
    random_prime,
    scope_key,
)
from policy.budget import BudgetKey, BudgetLedger, BudgetStateError
from policy.contract import (
    Contract,
    ContractSignature,
    OptionalField,
    Parties,
    PartyRef,
    Purpose,
    RateLimit,
    SessionLimits,
    TrustBudget,
)
from policy.decision import Decision, DecisionInput, DecisionLog
from policy.decision_point import PolicyDecisionPoint
from policy.dp import DPError, PrivacyBudget, PrivacyBudgetExhaustedError, dp_answer, dp_avg, dp_count, dp_sum
from policy.engine import EngineStats, PolicyEngine, base_policy, contract_document
from policy.engine_opa import OpaRestEngine, OpaTls
from policy.engine_regopy import RegopyEngine, compile_check
from policy.errors import (
    ContractInvalidError,
    ContractNotInForceError,
    ContractSignatureError,
    ContractUnsignedError,
    DecisionInputError,
    EngineError,
    GateError,
    MeasureError,
    PolicyError,
    RegoModuleError,
    UnknownContractError,
    UnknownPurposeError,
)
from policy.gate import GateResult, apply_gate
from policy.identifiers import InvalidIdentifierError, check_identifier, is_identifier
from policy.lifecycle import propose_contract, validate_contract
from policy.measures import (
    Chain,
    attempted_oer,
    authorization_drift,
    exposure_by_field,
    oer_by,
    over_exposure_rate,
)
from policy.predicates import Dataset, DatasetError, DatasetSchema, Predicate, PredicateError, parse_predicate
from policy.replay import ReplayError
from policy.trust import Pair, TrustBook, TrustConfig, TrustStateError

__all__ = [
    "InvalidIdentifierError",
    "check_identifier",
    "is_identifier",
    "BudgetKey",
    "BudgetLedger",
    "BudgetStateError",
    "Chain",
    "Contract",
    "ContractInvalidError",
    "ContractNotInForceError",
    "ContractSignature",
    "ContractSignatureError",
    "ContractUnsignedError",
    "Decision",
    "DecisionInput",
    "DecisionInputError",
    "DecisionLog",
    "EngineError",
    "EngineStats",
    "GateError",
    "GateResult",
    "MeasureError",
    "OpaRestEngine",
    "OpaTls",
    "OptionalField",
    "Pair",
    "Parties",
    "PartyRef",
    "PolicyDecisionPoint",
    "PolicyEngine",
    "PolicyError",
    "Purpose",
    "RateLimit",
    "RegoModuleError",
    "RegopyEngine",
    "SessionLimits",
    "TrustBook",
    "TrustBudget",
    "TrustConfig",
    "TrustStateError",
    "UnknownContractError",
    "UnknownPurposeError",
    "apply_gate",
    "attempted_oer",
    "authorization_drift",
    "base_policy",
    "compile_check",
    "contract_document",
    "exposure_by_field",
    "oer_by",
    "over_exposure_rate",
    "propose_contract",
    "validate_contract",
    "AuditCommitRefusedError",
    "AuditDecision",
    "AuditError",
    "Auditor",
    "AuditState",
    "AuditStateError",
    "InvalidQueryKindError",
    "InvalidScopeError",
    "ScopeStatus",
    "UnknownRecordError",
    "random_prime",
    "scope_key",
    "DPError",
    "PrivacyBudget",
    "PrivacyBudgetExhaustedError",
    "dp_answer",
    "dp_avg",
    "dp_count",
    "dp_sum",
    "Dataset",
    "DatasetError",
    "DatasetSchema",
    "Predicate",
    "PredicateError",
    "parse_predicate",
    "ReplayError",
]
