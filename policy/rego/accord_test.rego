# Unit tests of the Accord base policy (accord.rego), Rego v1.
#
# Run with OPA:    opa test policy/rego/
# Run in CI:       pytest tests/policy/test_policy_rego_unit.py (regopy)
package accord_test

import rego.v1

# Fixtures (a contract in engine form, see policy/engine.py:
# contract_document, and a base input) live in
# accord_test_fixtures/data.json, loaded as data.accord_test_fixtures.
# They are data rather than Rego literals because rego-cpp 1.x (regopy)
# miscompiles large object literals ("bundle verify: raw index … >=
# local_count …").
contract := data.accord_test_fixtures.contract

# Bind fixtures to local variables before `with … as`: rego-cpp 1.x (regopy)
# crashes on `with x as <rule reference>`; OPA accepts either form.
decide(overrides) := d if {
	inp := object.union(data.accord_test_fixtures.base_input, overrides)
	cs := {"c1": data.accord_test_fixtures.contract}
	d := data.accord.decision with input as inp with data.accord_contracts as cs
}

decide_with(overrides, cs) := d if {
	inp := object.union(data.accord_test_fixtures.base_input, overrides)
	d := data.accord.decision with input as inp with data.accord_contracts as cs
}

test_mni_allowed if {
	d := decide({"requested_fields": ["a.x", "a.y"]})
	d.allow
	d.released_fields == ["a.x", "a.y"]
	d.obligations == ["retain-30d"]
	d.reasons == []
	d.max_records == 7
}

test_optional_cheapest_first_within_budget if {
	d := decide({"requested_fields": ["o.mid", "o.cheap"], "budget_used_micros": 100000})
	d.released_fields == ["o.cheap"]
	d.reasons == ["TRUST_BUDGET_EXHAUSTED"]
	d.budget_spent_micros == 100000
}

test_optional_all_when_budget_allows if {
	d := decide({"requested_fields": ["o.mid", "o.cheap"]})
	d.released_fields == ["o.cheap", "o.mid"]
	d.budget_spent_micros == 300000
}

test_trust_below_threshold if {
	d := decide({"requested_fields": ["o.mid"], "trust_micros": 400000})
	d.allow
	d.released_fields == []
	d.reasons == ["TRUST_TOO_LOW:o.mid"]
}

test_ceiling_caps_trust if {
	d := decide({"requested_fields": ["o.high"], "trust_micros": 1000000})
	d.effective_trust_micros == 800000
	d.reasons == ["TRUST_TOO_LOW:o.high"]
}

test_field_not_in_contract if {
	d := decide({"requested_fields": ["a.x", "secret"]})
	d.allow
	d.released_fields == ["a.x"]
	d.reasons == ["FIELD_NOT_IN_CONTRACT:secret"]
}

test_unknown_contract if {
	d := decide({"contract_id": "nope"})
	not d.allow
	d.reasons == ["UNKNOWN_CONTRACT"]
}

test_unknown_purpose if {
	decide({"purpose": "q"}).reasons == ["UNKNOWN_PURPOSE"]
}

test_party_mismatch if {
	decide({"provider_org": "did:web:x.example"}).reasons == ["PARTY_MISMATCH"]
}

test_missing_scope if {
	decide({"agent_claims": {"org": "did:web:r.example", "scopes": []}}).reasons == ["MISSING_SCOPE"]
}

test_not_yet_in_force if {
	decide({"now_unix": 999}).reasons == ["CONTRACT_NOT_IN_FORCE"]
}

test_valid_until_is_exclusive if {
	decide({"now_unix": 1999}).allow
	decide({"now_unix": 2000}).reasons == ["CONTRACT_NOT_IN_FORCE"]
}

test_retired if {
	retired := {"c1": object.union(contract, {"retired_at_unix": 1200})}
	decide_with({}, retired).reasons == ["CONTRACT_NOT_IN_FORCE"]
	decide_with({"now_unix": 1199}, retired).allow
}

test_rate_limited if {
	decide({"recent_requests": 9}).allow
	decide({"recent_requests": 10}).reasons == ["RATE_LIMITED"]
}

test_session_limits if {
	decide({"session": {"requests": 5, "fields_released": 0}}).reasons == ["SESSION_LIMIT"]
	decide({"requested_fields": ["a.x", "a.y"], "session": {"requests": 0, "fields_released": 4}}).allow
	d := decide({"requested_fields": ["a.x", "a.y"], "session": {"requests": 0, "fields_released": 5}})
	d.reasons == ["SESSION_LIMIT"]
}

test_empty_request_denied if {
	decide({"requested_fields": []}).reasons == ["EMPTY_REQUEST"]
}

test_deny_releases_nothing if {
	d := decide({"requested_fields": ["a.x"], "recent_requests": 100})
	not d.allow
	d.released_fields == []
	d.obligations == []
	d.budget_spent_micros == 0
}

test_no_budget_means_unlimited if {
	unlimited := {"c1": object.union(contract, {"budget_units_micros": null})}
	d := decide_with({"requested_fields": ["o.cheap", "o.mid"], "budget_used_micros": 99000000}, unlimited)
	d.released_fields == ["o.cheap", "o.mid"]
	d.reasons == []
}

test_resource_not_in_contract if {
	d := decide({"resource": "r2"})
	not d.allow
	d.reasons == ["RESOURCE_NOT_IN_CONTRACT"]
}

test_subject_not_in_contract if {
	cs := {"c1": object.union(contract, {"purposes": {"p": {"mni": ["a.x", "a.y"], "optional": {"o.cheap": {"sensitivity_micros": 100000, "min_trust_micros": 200000}, "o.mid": {"sensitivity_micros": 200000, "min_trust_micros": 500000}, "o.high": {"sensitivity_micros": 100000, "min_trust_micros": 900000}}, "required_scopes": ["s:read"], "max_records": 7, "resources": ["r1"], "subjects": ["k1"]}}})}
	d := decide_with({"subject": "k2"}, cs)
	not d.allow
	d.reasons == ["SUBJECT_NOT_IN_CONTRACT"]
	ok := decide_with({"subject": "k1"}, cs)
	ok.allow
}

test_decision_names_the_contract if {
	d := decide({})
	d.contract_hash == "00"
	u := decide({"contract_id": "c2"})
	u.contract_hash == ""
}
