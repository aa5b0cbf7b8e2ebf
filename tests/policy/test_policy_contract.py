from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from policy_support import DATA, PROVIDER, REQUESTER, public_key, resolver, seed_for

from policy import (
    Contract,
    ContractInvalidError,
    ContractSignatureError,
    ContractUnsignedError,
    PolicyError,
    UnknownPurposeError,
)

VECTORS = DATA.parent / "vectors"


def raw() -> dict[str, Any]:
    return yaml.safe_load((DATA / "hospital.yaml").read_text())


def signed(c: Contract) -> Contract:
    for org in (PROVIDER, REQUESTER):
        c = c.sign(org=org, verification_method=f"{org}#key-1", seed=seed_for(org))
    return c


# ------------------------------------------------------------------ loading


def test_yaml_and_json_forms_have_the_same_hash(hospital: Contract, tmp_path) -> None:
    p = tmp_path / "c.json"
    hospital.dump(p)
    again = Contract.load(p)
    assert again == hospital
    assert again.version_hash == hospital.version_hash
    y = tmp_path / "c.yaml"
    hospital.dump(y)
    assert Contract.load(y).version_hash == hospital.version_hash


def test_version_hash_vector(hospital: Contract) -> None:
    jcs = (VECTORS / "hospital.terms.jcs").read_bytes()
    assert hashlib.sha256(jcs).hexdigest() == hospital.version_hash
    assert json.loads(jcs) == hospital.terms()
    # RFC 8785 details checked by hand: sorted keys, ES6 numbers, no whitespace
    assert jcs.startswith(b'{"id":"urn:accord:contract:hospital-research","obligations":')
    assert b'"patient.name":{"min_trust":0.9,"sensitivity":1}' in jcs
    assert b'"patient.year_of_birth":{"min_trust":0.2,"sensitivity":0}' in jcs
    assert b", " not in jcs and b": " not in jcs and b"\n" not in jcs


def test_hash_ignores_signatures_and_retirement_but_not_terms(hospital: Contract) -> None:
    s = signed(hospital)
    assert s.version_hash == hospital.version_hash
    r = hospital.retire(at=datetime(2026, 3, 1, tzinfo=UTC))
    assert r.version_hash == hospital.version_hash
    changed = Contract.from_dict(dict(raw(), title="Another title"))
    assert changed.version_hash != hospital.version_hash
    bumped = Contract.from_dict(dict(raw(), version=2))
    assert bumped.version_hash != hospital.version_hash


def test_explicit_defaults_hash_like_omitted_defaults() -> None:
    d = raw()
    d["purposes"]["billing"]["optional"] = {}
    d["purposes"]["billing"]["required_scopes"] = []
    assert Contract.from_dict(d).version_hash == Contract.from_dict(raw()).version_hash


def test_field_paths_are_canonicalized() -> None:
    d = raw()
    d["purposes"]["billing"]["mni"] = ["invoice[].total"]
    assert Contract.from_dict(d).purposes["billing"].mni == ["invoice.total"]


def _mut(path: list[Any], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(raw())
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


_DELETE = object()

INVALID = [
    (["trust_ceiling"], 1.5, "trust_ceiling"),
    (["trust_ceiling"], "high", "trust_ceiling"),
    (["version"], 0, "version"),
    (["id"], "has space", "id"),
    (["id"], _DELETE, "id"),
    (["title"], "", "title"),
    (["purposes"], {}, "purposes"),
    (
        ["purposes", "research", "optional", "patient.zip3", "min_trust"],
        2,
        "purposes.research.optional.patient.zip3.min_trust",
    ),
    (
        ["purposes", "research", "optional", "patient.zip3", "sensitivity"],
        -1,
        "purposes.research.optional.patient.zip3.sensitivity",
    ),
    (
        ["purposes", "research", "optional", "patient.age"],
        {"sensitivity": 1, "min_trust": 0.1},
        "purposes.research",
    ),
    (["purposes", "research", "mni"], ["patient..age"], "purposes.research.mni"),
    (["purposes", "research", "mni"], ["patient.age", "patient.age"], "purposes.research.mni"),
    (
        ["purposes", "research", "required_scopes"],
        ["bad scope"],
        "purposes.research.required_scopes",
    ),
    (["purposes", "research", "max_records"], 0, "purposes.research.max_records"),
    (["purposes", "empty"], {}, "purposes.empty.resources"),
    (["purposes", "bad name"],
     {"resources": ["cohort"], "subjects": ["*"], "required_scopes": [], "mni": ["a"]},
     "purposes"),
    (["parties", "provider", "org"], "hospital-a", "parties.provider.org"),
    (["parties", "requester"], {"org": "did:web:hospital-a.example", "name": "Same"}, "parties"),
    (["valid_until"], "2025-01-01T00:00:00Z", "valid_until"),
    (["valid_from"], "2026-01-01T00:00:00", "valid_from"),
    (["valid_from"], "2026-01-01T00:00:00.5Z", "valid_from"),
    (["trust_budget"], {"units": 0, "window_seconds": 60}, "trust_budget.units"),
    (["rate_limit"], {"requests": 10}, "rate_limit.window_seconds"),
    (["obligations"], ["a", "a"], "obligations"),
    (["rego_module"], "package other\nallow := true\n", "rego_module"),
    (["surprise"], 1, "surprise"),
    # strict format (#18.5): no coercion, no unknown keys, no missing key widens
    (["purposes", "research", "optional", "patient.zip3", "min_trust"], "0.5",
     "purposes.research.optional.patient.zip3.min_trust"),
    (["purposes", "research", "optional", "patient.zip3", "min_trust"], True,
     "purposes.research.optional.patient.zip3.min_trust"),
    (["purposes", "research", "optional", "patient.zip3", "min_trust"], 0.7500004,
     "purposes.research.optional.patient.zip3.min_trust"),
    (["trust_ceiling"], 0.7999996, "trust_ceiling"),
    (["trust_budget"], _DELETE, "trust_budget"),
    (["rate_limit"], _DELETE, "rate_limit"),
    (["session_limits"], _DELETE, "session_limits"),
    (["purposes", "research", "required_scopes"], _DELETE, "purposes.research.required_scopes"),
    (["purposes", "research", "resources"], _DELETE, "purposes.research.resources"),
    (["purposes", "research", "resources"], "cohort", "purposes.research.resources"),
    (["purposes", "research", "subjects"], _DELETE, "purposes.research.subjects"),
    (["purposes", "research", "subjects"], ["rec-*"], "purposes.research.subjects.0"),
    (["purposes", "research", "resources"], ["coh\x00ort"], "purposes.research.resources.0"),
    (["purposes", "research", "aggregates"],
     {"dataset": "cohort", "kinds": ["count"], "columns": ["age"], "allow_ids": "false"},
     "purposes.research.aggregates.allow_ids"),
    (["purposes", "research", "aggregates"], {"dataset": "cohort", "kinds": ["count"], "columns": "age"},
     "purposes.research.aggregates.columns"),
    (["purposes", "research", "aggregates"], {"kinds": ["count"], "columns": ["age"]},
     "purposes.research.aggregates.dataset"),
    (["purposes", "research", "aggregates"], {"dataset": "cohort", "kinds": ["count"]},
     "purposes.research.aggregates.columns"),
    (["purposes", "research", "aggregates"], {"dataset": "cohort", "kinds": ["median"], "columns": ["age"]},
     "purposes.research.aggregates.kinds.0"),
    (["purposes", "research", "aggregates"], {"dataset": "cohort", "kinds": ["count"], "columns": ["age"],
                                               "colums": ["x"]}, "purposes.research.aggregates.colums"),
    (["purposes", "research", "aggregates"],
     {"dataset": "admissions", "kinds": ["count"], "columns": ["age"]},
     "purposes.research"),
    # nesting (#18.7): a path may not be weaker than a descendant
    (["purposes", "research", "mni"], ["patient", "patient.diagnosis"], "purposes.research"),
    (["purposes", "research", "optional", "patient"], {"sensitivity": 5, "min_trust": 0.1},
     "purposes.research"),
    (["purposes", "research", "optional", "patient"], {"sensitivity": 0.1, "min_trust": 0.95},
     "purposes.research"),
    # hooks (#18.9): the package clause is parsed, not searched for
    (["rego_module"], 'package accord # package accord.hooks.x\nimport rego.v1\nallow if true\n',
     "rego_module"),
    (["rego_module"], 'package accord\nimport rego.v1\nx := "\npackage accord.hooks.evil"\nallow if true\n',
     "rego_module"),
    (["rego_module"], "package accord.hooks.imp\nimport rego.v1\nimport data.accord\nx := accord.allow\n",
     "rego_module"),
    (
        ["rego_module"],
        'package accord.hooks.clock\nimport rego.v1\ndeny contains "LATE" if time.now_ns() > 0\n',
        "rego_module",
    ),
    (
        ["rego_module"],
        "package accord.hooks.net\nimport rego.v1\nx := http.send({})\n",
        "rego_module",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field"), INVALID, ids=[i[2] + "-" + str(n) for n, i in enumerate(INVALID)]
)
def test_invalid_contract_names_the_field(path: list[Any], value: Any, field: str) -> None:
    with pytest.raises(ContractInvalidError) as ei:
        Contract.from_dict(_mut(path, value))
    err = ei.value
    assert err.metadata["field"] == field
    assert err.reason == "CONTRACT_INVALID"
    assert err.caller_fault is True
    assert isinstance(err, PolicyError)
    assert field.split(".")[0] in str(err) or field == ""


def test_not_a_mapping_and_bad_files(tmp_path) -> None:
    with pytest.raises(ContractInvalidError):
        Contract.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n")
    with pytest.raises(ContractInvalidError, match="not valid YAML"):
        Contract.load(bad)
    badj = tmp_path / "bad.json"
    badj.write_text("{")
    with pytest.raises(ContractInvalidError, match="not valid JSON"):
        Contract.load(badj)
    with pytest.raises(ContractInvalidError, match="cannot read"):
        Contract.load(tmp_path / "missing.yaml")


def test_contract_is_frozen(hospital: Contract) -> None:
    with pytest.raises(Exception):  # noqa: B017  (pydantic ValidationError)
        hospital.title = "x"  # type: ignore[misc]


# ------------------------------------------------------------------ signatures


def test_sign_and_verify_both_parties(hospital: Contract) -> None:
    s = signed(hospital)
    s.verify_signatures(resolver(PROVIDER, REQUESTER))
    assert {x.org for x in s.signatures} == {PROVIDER, REQUESTER}


def test_jws_is_detached_eddsa_over_the_version_hash(hospital: Contract) -> None:
    s = hospital.sign(
        org=PROVIDER, verification_method=f"{PROVIDER}#key-1", seed=seed_for(PROVIDER)
    )
    h64, payload, sig64 = s.signatures[0].jws.split(".")
    assert payload == ""
    header = json.loads(base64.urlsafe_b64decode(h64 + "=" * (-len(h64) % 4)))
    assert header["alg"] == "EdDSA" and header["kid"] == f"{PROVIDER}#key-1"
    sig = base64.urlsafe_b64decode(sig64 + "=" * (-len(sig64) % 4))
    assert len(sig) == 64
    b64hash = base64.urlsafe_b64encode(hospital.version_hash.encode()).rstrip(b"=").decode()
    Ed25519PublicKey.from_public_bytes(public_key(seed_for(PROVIDER))).verify(
        sig, f"{h64}.{b64hash}".encode()
    )


def test_one_signature_is_not_enough(hospital: Contract) -> None:
    s = hospital.sign(
        org=PROVIDER, verification_method=f"{PROVIDER}#key-1", seed=seed_for(PROVIDER)
    )
    with pytest.raises(ContractUnsignedError) as ei:
        s.verify_signatures(resolver(PROVIDER, REQUESTER))
    assert ei.value.metadata["role"] == "requester"
    with pytest.raises(ContractUnsignedError):
        hospital.verify_signatures(resolver(PROVIDER, REQUESTER))


def test_changed_terms_break_signatures(hospital: Contract) -> None:
    s = signed(hospital)
    tampered = Contract.from_dict(dict(s.to_dict(), trust_ceiling=1.0))
    with pytest.raises(ContractSignatureError, match="does not verify"):
        tampered.verify_signatures(resolver(PROVIDER, REQUESTER))


def test_retirement_keeps_signatures_valid(hospital: Contract) -> None:
    s = signed(hospital).retire(at=datetime(2026, 3, 1, 10, 0, 0, 999, tzinfo=UTC))
    s.verify_signatures(resolver(PROVIDER, REQUESTER))
    assert s.retired_at == datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    assert not s.in_force(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
    assert s.in_force(datetime(2026, 3, 1, 9, 59, 59, tzinfo=UTC))


def test_wrong_key_unknown_key_and_bad_jws(hospital: Contract) -> None:
    s = signed(hospital)
    swapped = {
        f"{PROVIDER}#key-1": public_key(seed_for(REQUESTER)),
        f"{REQUESTER}#key-1": public_key(seed_for(REQUESTER)),
    }
    with pytest.raises(ContractSignatureError, match="does not verify"):
        s.verify_signatures(lambda vm: swapped[vm])
    with pytest.raises(ContractSignatureError, match="unknown verification method"):
        s.verify_signatures(resolver(REQUESTER))
    sigs = list(s.signatures)
    bad = sigs[0].model_copy(update={"jws": sigs[0].jws.replace("..", ".payload.")})
    broken = s.model_copy(update={"signatures": [bad, sigs[1]]})
    with pytest.raises(ContractSignatureError, match="detached"):
        broken.verify_signatures(resolver(PROVIDER, REQUESTER))
    h = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
    none_alg = sigs[0].model_copy(update={"jws": h + ".." + sigs[0].jws.split("..")[1]})
    with pytest.raises(ContractSignatureError, match="EdDSA"):
        s.model_copy(update={"signatures": [none_alg, sigs[1]]}).verify_signatures(
            resolver(PROVIDER, REQUESTER)
        )
    with pytest.raises(ContractSignatureError, match="two signatures"):
        s.model_copy(update={"signatures": [sigs[0], sigs[0], sigs[1]]}).verify_signatures(
            resolver(PROVIDER, REQUESTER)
        )


def test_signers_must_be_parties_with_their_own_keys(hospital: Contract) -> None:
    with pytest.raises(ContractSignatureError, match="not a party"):
        hospital.sign(
            org="did:web:evil.example", verification_method="did:web:evil.example#k", seed=bytes(32)
        )
    with pytest.raises(ContractSignatureError, match="does not belong"):
        hospital.sign(org=PROVIDER, verification_method=f"{REQUESTER}#key-1", seed=bytes(32))
    with pytest.raises(ContractSignatureError, match="32 bytes"):
        hospital.sign(org=PROVIDER, verification_method=f"{PROVIDER}#key-1", seed=b"short")


def test_resigning_replaces_the_signature(hospital: Contract) -> None:
    s = signed(hospital)
    again = s.sign(org=PROVIDER, verification_method=f"{PROVIDER}#key-1", seed=seed_for(PROVIDER))
    assert len(again.signatures) == 2
    again.verify_signatures(resolver(PROVIDER, REQUESTER))


# ------------------------------------------------------------------ queries


def test_in_force_window(hospital: Contract) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2027, 1, 1, tzinfo=UTC)
    assert hospital.in_force(start)
    assert not hospital.in_force(start - timedelta(microseconds=1))
    assert hospital.in_force(end - timedelta(microseconds=1))
    assert not hospital.in_force(end)
    with pytest.raises(ValueError):
        hospital.in_force(datetime(2026, 6, 1))


def test_purpose_lookup(hospital: Contract) -> None:
    assert hospital.purpose("research").max_records == 100
    with pytest.raises(UnknownPurposeError) as ei:
        hospital.purpose("marketing")
    assert ei.value.reason == "UNKNOWN_PURPOSE"
    assert ei.value.metadata == {"contract_id": hospital.id, "purpose": "marketing"}


def test_check_fields(hospital: Contract) -> None:
    schema = ["patient", "invoice.total", "invoice.currency"]
    hospital.check_fields(schema)
    hospital.check_fields(
        [
            "patient.age",
            "patient.diagnosis",
            "patient.zip3",
            "patient.sex",
            "patient.name",
            "patient.year_of_birth.value",
            "invoice.total",
        ]
    )
    with pytest.raises(ContractInvalidError) as ei:
        hospital.check_fields(["patient.age", "patient.diagnosis", "invoice.total"])
    assert ei.value.metadata["field"] == "purposes.research.optional"
    assert ei.value.metadata["missing"] == "patient.name"
    with pytest.raises(ContractInvalidError, match="invoice.total"):
        hospital.check_fields(["patient"])


def test_hook_name() -> None:
    c = Contract.load(DATA / "clinic.yaml")
    assert c.hook_name == "clinic_hours"
    assert Contract.load(DATA / "hospital.yaml").hook_name is None
