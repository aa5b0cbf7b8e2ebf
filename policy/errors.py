"""Typed errors of the ``policy`` package.

Every error carries a stable ``reason`` code (UPPER_SNAKE_CASE, part of the
wire contract: the node maps it to a gRPC status and a
``google.rpc.ErrorInfo`` reason) and says whose fault it is
(``caller_fault``: True when the request or input was bad, False when the
engine or the node failed). No gRPC here: ``federation`` translates.
"""

from __future__ import annotations

from collections.abc import Mapping


class PolicyError(Exception):
    """Base class of every error raised by ``policy``.

    Attributes:
        reason: stable reason code, e.g. ``"CONTRACT_INVALID"``.
        caller_fault: True if the caller's input caused it, False if ours.
        metadata: string key/value evidence (never data values).
    """

    reason: str = "POLICY_ERROR"
    caller_fault: bool = True

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class ContractInvalidError(PolicyError):
    """A contract document is malformed or violates an invariant.

    ``metadata["field"]`` names the offending field path (dotted, e.g.
    ``"purposes.research.optional.patient.age.min_trust"``) when known.
    """

    reason = "CONTRACT_INVALID"
    caller_fault = True


class RegoModuleError(ContractInvalidError):
    """A contract's ``rego_module`` does not compile or breaks the hook convention."""

    reason = "REGO_MODULE_INVALID"
    caller_fault = True


class ContractUnsignedError(PolicyError):
    """A contract lacks the signature of one of its two parties."""

    reason = "CONTRACT_UNSIGNED"
    caller_fault = True


class ContractSignatureError(PolicyError):
    """A contract signature does not verify (bad JWS, wrong key, wrong signer)."""

    reason = "CONTRACT_SIGNATURE_INVALID"
    caller_fault = True


class ContractNotInForceError(PolicyError):
    """A contract is used outside its validity window or after retirement."""

    reason = "CONTRACT_NOT_IN_FORCE"
    caller_fault = True


class UnknownContractError(PolicyError):
    """No contract with this id is registered."""

    reason = "UNKNOWN_CONTRACT"
    caller_fault = True


class UnknownPurposeError(PolicyError):
    """The contract has no purpose of this name."""

    reason = "UNKNOWN_PURPOSE"
    caller_fault = True


class EngineError(PolicyError):
    """The policy engine failed (compile error, unreachable OPA, bad answer).

    ``decide`` never raises this (it denies with ``ENGINE_ERROR``); ``load``
    does.
    """

    reason = "ENGINE_ERROR"
    caller_fault = False


class GateError(PolicyError):
    """A released-field path is not valid MNI gate notation."""

    reason = "GATE_PATH_INVALID"
    caller_fault = True


class MeasureError(PolicyError):
    """An OER/AD measure was asked of inconsistent or empty input."""

    reason = "MEASURE_INVALID"
    caller_fault = True


class DecisionInputError(PolicyError):
    """A decision input is malformed (bad field path, naive time, τ outside [0, 1])."""

    reason = "DECISION_INPUT_INVALID"
    caller_fault = True
