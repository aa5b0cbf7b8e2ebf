# Accord base policy (Rego v1): one decision per cross-organization request.
#
# Query: data.accord.decision   (OPA REST: POST /v1/data/accord/decision)
# Data:  data.accord_contracts[<contract id>]  contracts in engine form
#        (see policy/engine.py: contract_document); per-contract hooks are
#        modules with `package accord.hooks.<name>` whose `deny` set adds
#        deny reasons and whose `obligations` set adds obligations.
# Input: see policy/decision.py: DecisionInput.to_rego_input.
#
# Trust and budget are integers (micro-units, 1.0 = 1000000) and times are
# integer Unix seconds, so that OPA (arbitrary precision) and rego-cpp
# (doubles, printed with 6 significant digits) give the same answers.
package accord

import rego.v1

contract := data.accord_contracts[input.contract_id]

purpose := contract.purposes[input.purpose]

# ------------------------------------------------------------------ denials

deny contains "UNKNOWN_CONTRACT" if {
	not data.accord_contracts[input.contract_id]
}

deny contains "CONTRACT_NOT_IN_FORCE" if {
	input.now_unix < contract.valid_from_unix
}

deny contains "CONTRACT_NOT_IN_FORCE" if {
	input.now_unix >= contract.valid_until_unix
}

deny contains "CONTRACT_NOT_IN_FORCE" if {
	contract.retired_at_unix != null
	input.now_unix >= contract.retired_at_unix
}

deny contains "UNKNOWN_PURPOSE" if {
	contract
	not contract.purposes[input.purpose]
}

deny contains "PARTY_MISMATCH" if {
	contract.requester != input.requester_org
}

deny contains "PARTY_MISMATCH" if {
	contract.provider != input.provider_org
}

deny contains "PARTY_MISMATCH" if {
	input.agent_claims.org != input.requester_org
}

# The contract names the resources (data sets) and subjects each purpose may
# read: anything else is refused (a subject pattern is "*" or an exact key).
deny contains "RESOURCE_NOT_IN_CONTRACT" if {
	purpose
	not input.resource in purpose.resources
}

subject_allowed if "*" in purpose.subjects

subject_allowed if input.subject in purpose.subjects

deny contains "SUBJECT_NOT_IN_CONTRACT" if {
	purpose
	not subject_allowed
}

agent_scopes := {s | some s in input.agent_claims.scopes}

deny contains "MISSING_SCOPE" if {
	some s in purpose.required_scopes
	not s in agent_scopes
}

deny contains "EMPTY_REQUEST" if {
	count(input.requested_fields) == 0
}

deny contains "RATE_LIMITED" if {
	contract.rate_limit != null
	input.recent_requests >= contract.rate_limit.requests
}

deny contains "SESSION_LIMIT" if {
	contract.session_limits.max_requests != null
	input.session.requests >= contract.session_limits.max_requests
}

# Distinct fields: with `released_names` (the node sends it), a field released
# again does not count twice; without it, `fields_released` is taken as distinct.
session_released := {f | some f in object.get(input.session, "released_names", [])}

deny contains "SESSION_LIMIT" if {
	contract.session_limits.max_fields != null
	(input.session.fields_released - count(session_released)) + count(session_released | release) > contract.session_limits.max_fields
}

# Contract hook: `package accord.hooks.<name>` may define `deny` (a set of
# reason strings) and `obligations` (a set of obligation codes).
deny contains r if {
	contract.hook != null
	some r in data.accord.hooks[contract.hook].deny
	is_string(r)
}

default allow := false

allow if count(deny) == 0

# ------------------------------------------------------------------ release

default tau := 0

# Effective trust (micro-units): never above the contract's ceiling.
# (Comparisons, not min/sort: rego-cpp 1.x orders numbers in min, max and
# sort as if they were strings.)
tau := contract.trust_ceiling_micros if {
	contract.trust_ceiling_micros <= input.trust_micros
}

tau := input.trust_micros if {
	input.trust_micros < contract.trust_ceiling_micros
}

requested := {f | some f in input.requested_fields}

mni := {f | some f in purpose.mni}

# Optional fields the trust level allows: field -> sensitivity (micro-units).
eligible[f] := o.sensitivity_micros if {
	requested[f]
	o := purpose.optional[f]
	tau >= o.min_trust_micros
}

# Release order: cheapest first, then by name.
at_or_before(g, f) if g == f

at_or_before(g, f) if eligible[g] < eligible[f]

at_or_before(g, f) if {
	eligible[g] == eligible[f]
	g < f
}

# Sensitivity of every eligible field released up to and including f.
cumulative[f] := sum([c | some g; c := eligible[g]; at_or_before(g, f)]) if {
	_ = eligible[f]
}

budget_limited if contract.budget_units_micros != null

remaining_micros := contract.budget_units_micros - input.budget_used_micros if budget_limited

optional_release contains f if {
	not budget_limited
	_ = eligible[f]
}

# Greedy prefix: an eligible field is released while the cumulative
# sensitivity up to it fits the remaining budget.
optional_release contains f if {
	budget_limited
	cumulative[f] <= remaining_micros
}

release := (requested & mni) | optional_release

notes contains sprintf("FIELD_NOT_IN_CONTRACT:%s", [f]) if {
	requested[f]
	purpose
	not mni[f]
	not purpose.optional[f]
}

notes contains sprintf("TRUST_TOO_LOW:%s", [f]) if {
	requested[f]
	o := purpose.optional[f]
	tau < o.min_trust_micros
}

notes contains "TRUST_BUDGET_EXHAUSTED" if {
	_ = eligible[f]
	not optional_release[f]
}

obligations contains o if {
	some o in contract.obligations
}

obligations contains o if {
	contract.hook != null
	some o in data.accord.hooks[contract.hook].obligations
	is_string(o)
}

default max_records := null

max_records := purpose.max_records

spent_micros := sum([purpose.optional[f].sensitivity_micros | some f in optional_release])

# The contract the engine decided under, so the caller can check it is the
# one it looked up itself ("" when the engine found none).
default contract_hash := ""

contract_hash := contract.version_hash

# ------------------------------------------------------------------ decision

decision := {
	"allow": true,
	"released_fields": sort(release),
	"obligations": sort(obligations),
	"reasons": sort(notes),
	"effective_trust_micros": tau,
	"budget_spent_micros": spent_micros,
	"max_records": max_records,
	"contract_hash": contract_hash,
} if allow

decision := {
	"allow": false,
	"released_fields": [],
	"obligations": [],
	"reasons": sort(deny),
	"effective_trust_micros": tau,
	"budget_spent_micros": 0,
	"max_records": null,
	"contract_hash": contract_hash,
} if not allow
