from __future__ import annotations

from datetime import UTC, datetime

import pytest
from policy_support import DATA, PROVIDER, REQUESTER, resolver, seed_for

from policy import (
    Contract,
    ContractInvalidError,
    ContractNotInForceError,
    ContractSignatureError,
    ContractUnsignedError,
    RegoModuleError,
    RegopyEngine,
)
from policy.lifecycle import propose_contract as propose
from policy.lifecycle import validate_contract as validate

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def draft(**kw) -> Contract:
    args = dict(
        contract_id="urn:accord:contract:draft",
        title="Draft",
        provider=(PROVIDER, "Hospital A"),
        requester=(REQUESTER, "Lab B"),
        purposes={
            "research": {
                "resources": ["cohort"],
                "subjects": ["*"],
                "required_scopes": [],
                "mni": ["patient.age"],
                "optional": {"patient.zip3": {"sensitivity": 0.2, "min_trust": 0.5}},
            }
        },
        trust_ceiling=0.7,
        valid_from=START,
        valid_until=END,
        trust_budget=(1.0, 3600),
        rate_limit=(10, 60),
        obligations=["delete-after-90d"],
    )
    args.update(kw)
    return propose(**args)


def test_propose_write_sign_validate_register(tmp_path) -> None:
    c = draft()
    path = tmp_path / "draft.yaml"
    c.dump(path)
    loaded = Contract.load(path)
    assert loaded.version_hash == c.version_hash
    for org in (PROVIDER, REQUESTER):
        loaded = loaded.sign(org=org, verification_method=f"{org}#key-1", seed=seed_for(org))
    validate(
        loaded,
        resolve_key=resolver(PROVIDER, REQUESTER),
        available_fields=["patient.age", "patient.zip3"],
        now=datetime(2026, 5, 1, tzinfo=UTC),
    )
    e = RegopyEngine()
    e.load([loaded])


def test_propose_refuses_bad_arguments() -> None:
    with pytest.raises(ContractInvalidError) as ei:
        draft(trust_ceiling=3)
    assert ei.value.metadata["field"] == "trust_ceiling"
    with pytest.raises(ContractInvalidError) as ei:
        draft(purposes={})
    assert ei.value.metadata["field"] == "purposes"
    with pytest.raises(ContractInvalidError) as ei:
        draft(valid_until=START)
    assert ei.value.metadata["field"] == "valid_until"


def test_validate_reports_each_failure_precisely() -> None:
    c = draft()
    with pytest.raises(ContractUnsignedError):
        validate(c, resolve_key=resolver(PROVIDER, REQUESTER))
    with pytest.raises(ContractInvalidError) as ei:
        validate(c, available_fields=["patient.age"])
    assert ei.value.metadata["missing"] == "patient.zip3"
    with pytest.raises(ContractNotInForceError):
        validate(c, now=datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ContractNotInForceError, match="retired"):
        validate(
            c.retire(at=datetime(2026, 2, 1, tzinfo=UTC)), now=datetime(2026, 5, 1, tzinfo=UTC)
        )
    signed = c.sign(org=PROVIDER, verification_method=f"{PROVIDER}#key-1", seed=seed_for(REQUESTER))
    signed = signed.sign(
        org=REQUESTER, verification_method=f"{REQUESTER}#key-1", seed=seed_for(REQUESTER)
    )
    with pytest.raises(ContractSignatureError):
        validate(signed, resolve_key=resolver(PROVIDER, REQUESTER))


def test_validate_compiles_hooks() -> None:
    hook = Contract.load(DATA / "clinic.yaml").rego_module
    validate(draft(rego_module=hook))
    bad = hook.replace("is_string(", "is_strng(")
    with pytest.raises(RegoModuleError, match="is_strng"):
        validate(draft(rego_module=bad))
