"""Contract lifecycle for the CLI: propose a draft, validate, sign, retire.

``propose_contract`` builds an unsigned draft from arguments (write it with
:meth:`Contract.dump`); each party then calls :meth:`Contract.sign`;
``validate_contract`` runs every check a node makes before registering a contract;
:meth:`Contract.retire` ends it early.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from policy.contract import Contract
from policy.engine_regopy import compile_check
from policy.errors import ContractInvalidError, ContractNotInForceError

__all__ = ["check_supersedes", "propose_contract", "validate_contract"]


def propose_contract(
    *,
    contract_id: str,
    title: str,
    provider: tuple[str, str],
    requester: tuple[str, str],
    purposes: Mapping[str, Mapping[str, Any]],
    trust_ceiling: float,
    valid_from: datetime,
    valid_until: datetime,
    version: int = 1,
    trust_budget: tuple[float, int] | None = None,
    rate_limit: tuple[int, int] | None = None,
    obligations: Sequence[str] = (),
    session_limits: Mapping[str, int] | None = None,
    rego_module: str | None = None,
) -> Contract:
    """Build an unsigned draft contract from arguments.

    Args:
        contract_id: the contract id.
        title: human-readable title.
        provider: (organization DID, name) of the data provider.
        requester: (organization DID, name) of the requester.
        purposes: purpose name → ``{"resources": [...], "subjects": [...],
            "required_scopes": [...], "mni": [...], "optional": {field:
            {"sensitivity": float, "min_trust": float}}, "max_records": int,
            "aggregates": {...}}`` (``resources``, ``subjects`` and
            ``required_scopes`` required; see ``docs/contracts.md``).
        trust_ceiling: τ ceiling in [0, 1].
        valid_from: start (timezone-aware, whole seconds).
        valid_until: end, exclusive.
        version: positive version number.
        trust_budget: (units, window seconds) or None (written as ``null``: no budget).
        rate_limit: (requests, window seconds) or None (written as ``null``: no limit).
        obligations: obligation codes.
        session_limits: ``{"max_requests": int, "max_fields": int}`` or None.
        rego_module: hook module source (``package accord.hooks.<name>``) or None.

    Returns:
        The validated, unsigned :class:`Contract`.

    Raises:
        ContractInvalidError: any argument breaks the contract invariants
            (``metadata["field"]`` names it).
    """
    doc: dict[str, Any] = {
        "id": contract_id,
        "version": version,
        "title": title,
        "parties": {
            "provider": {"org": provider[0], "name": provider[1]},
            "requester": {"org": requester[0], "name": requester[1]},
        },
        "purposes": {k: dict(v) for k, v in purposes.items()},
        "trust_ceiling": trust_ceiling,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "obligations": list(obligations),
    }
    doc["trust_budget"] = (
        None if trust_budget is None else {"units": trust_budget[0], "window_seconds": trust_budget[1]}
    )
    doc["rate_limit"] = (
        None if rate_limit is None else {"requests": rate_limit[0], "window_seconds": rate_limit[1]}
    )
    doc["session_limits"] = {"max_requests": None, "max_fields": None, **dict(session_limits or {})}
    if rego_module is not None:
        doc["rego_module"] = rego_module
    return Contract.from_dict(doc)


def validate_contract(
    contract: Contract,
    *,
    resolve_key: Callable[[str], bytes] | None = None,
    available_fields: Collection[str] | None = None,
    now: datetime | None = None,
) -> None:
    """Run the checks a node makes before registering a contract.

    In order: the hook module compiles (regopy); every field exists in the
    dataset schema (if ``available_fields`` is given); both parties' signatures
    verify (if ``resolve_key`` is given); the contract is in force (if ``now``
    is given).

    Raises:
        RegoModuleError: the hook does not compile or calls unknown functions.
        ContractInvalidError: a field is missing from the schema.
        ContractUnsignedError: a party has not signed.
        ContractSignatureError: a signature does not verify.
        ContractNotInForceError: not in force at ``now``.
    """
    if contract.rego_module is not None:
        compile_check(contract)
    if available_fields is not None:
        contract.check_fields(available_fields)
    if resolve_key is not None:
        contract.verify_signatures(resolve_key)
    if now is not None and not contract.in_force(now):
        raise ContractNotInForceError(
            f"contract {contract.id} v{contract.version} is not in force at "
            f"{now.isoformat()} (valid {contract.valid_from.isoformat()} to "
            f"{contract.valid_until.isoformat()}"
            + (f", retired {contract.retired_at.isoformat()}" if contract.retired_at else "")
            + ")",
            metadata={"contract_id": contract.id},
        )


def check_supersedes(old: Contract | None, new: Contract) -> None:
    """Check that registering ``new`` moves contract ``old`` (same id) forward.

    A contract version only moves forward: a lower version, or the same
    version with other terms (another version hash), is refused; so is
    re-registering the same version of a retired contract (that would undo
    the retirement: retirement is node-local and outside the hash). The same
    version with the same hash (e.g. with a new signature) is accepted.

    Args:
        old: the contract registered under ``new.id``, or None.
        new: the contract to register.

    Raises:
        ContractInvalidError: reason ``CONTRACT_VERSION_NOT_NEWER``.
    """
    if old is None:
        return
    meta = {"contract_id": new.id, "field": "version", "registered": str(old.version)}
    if new.version < old.version:
        raise ContractInvalidError(
            f"contract {new.id}: version {new.version} is older than the registered v{old.version}",
            reason="CONTRACT_VERSION_NOT_NEWER",
            metadata=meta,
        )
    if new.version == old.version and new.version_hash != old.version_hash:
        raise ContractInvalidError(
            f"contract {new.id}: v{new.version} is registered with other terms "
            f"(hash {old.version_hash[:16]}…); bump the version to change terms",
            reason="CONTRACT_VERSION_NOT_NEWER",
            metadata=meta,
        )
    if new.version == old.version and old.retired_at is not None:
        raise ContractInvalidError(
            f"contract {new.id}: v{new.version} was retired here; register a new version",
            reason="CONTRACT_VERSION_NOT_NEWER",
            metadata=meta,
        )
