"""Data, agents, contracts and exchanges of the disaster-response scenario.

Three organizations respond to a flood: a **hospital** (patients, beds,
pharmacy), a disaster-**relief** agency (shelters, field teams) and a
medical **supplier** (inventory, deliveries). Records are generated here
from a fixed seed, so every run shares the same data; the agents, the
contracts and the scripted exchanges with their expected outcomes are data
in ``scenario.yaml``, read by :func:`load_scenario` (pydantic models,
bounded; a malformed file is refused in one line naming the file, the line
and the field).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from federation.config import validation_message
from federation.errors import ConfigError
from policy import Purpose, RateLimit, SessionLimits, TrustBudget

ORGS = ("hospital", "relief", "supplier")

FIRST = ["Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jia", "Kofi", "Lena"]
LAST = ["Okafor", "Silva", "Nguyen", "Haddad", "Kowalski", "Mensah", "Tanaka", "Rossi"]
SHELTERS = ["north-school", "riverside-gym", "st-mary-hall", "harbor-depot", "hill-church"]


def patients(rng: random.Random, n: int = 12) -> dict[str, dict[str, Any]]:
    """Hospital patient records (sensitive: diagnosis, HIV status, insurance)."""
    out = {}
    for i in range(n):
        pid = f"patient-{i + 1:03d}"
        out[pid] = {
            "patient_id": pid,
            "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            "age": rng.randint(2, 91),
            "triage_level": rng.choice(["red", "yellow", "green"]),
            "mobility": rng.choice(["stretcher", "wheelchair", "walking"]),
            "shelter": rng.choice(SHELTERS),
            "blood_type": rng.choice(["O+", "O-", "A+", "B+", "AB+"]),
            "allergies": rng.choice([[], ["penicillin"], ["latex"], ["nuts", "penicillin"]]),
            "diagnosis": rng.choice(["fracture", "hypothermia", "laceration", "pneumonia", "dialysis"]),
            "hiv_status": rng.choice(["negative", "positive", "unknown"]),
            "insurance_id": f"INS-{rng.randint(10**7, 10**8 - 1)}",
        }
    return out


def shelters(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Relief shelters (sensitive: resident names, coordinator phone)."""
    out = {}
    for s in SHELTERS:
        cap = rng.randint(40, 220)
        out[s] = {
            "shelter_id": s,
            "capacity": cap,
            "occupancy": rng.randint(cap // 3, cap),
            "location": {"lat": round(rng.uniform(44.0, 44.2), 4), "lon": round(rng.uniform(7.5, 7.8), 4)},
            "needs": rng.sample(["insulin", "blankets", "water", "oxygen", "bandages", "antibiotics"], 2),
            "coordinator_phone": f"+39 3{rng.randint(10**8, 10**9 - 1)}",
            "resident_names": [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(3)],
        }
    return out


def inventory(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Supplier inventory (sensitive: unit cost, margin, supplier lots)."""
    items = [
        "insulin-pen",
        "oxygen-cylinder",
        "thermal-blanket",
        "iv-saline",
        "bandage-roll",
        "antibiotic-amox",
        "water-filter",
        "stretcher",
    ]
    out = {}
    for i, name in enumerate(items):
        sku = f"SKU-{1000 + i}"
        out[sku] = {
            "sku": sku,
            "name": name,
            "stock": rng.randint(0, 900),
            "warehouse": rng.choice(["turin-east", "asti", "cuneo"]),
            "unit_price": round(rng.uniform(2, 300), 2),
            "unit_cost": round(rng.uniform(1, 200), 2),
            "margin_pct": rng.randint(5, 40),
            "lot_numbers": [f"L{rng.randint(10000, 99999)}"],
        }
    return out


def datasets() -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{org: {resource: {subject: record}}}`` for the three organizations."""
    rng = random.Random(20261121)
    return {
        "hospital": {"patients": patients(rng)},
        "relief": {"shelters": shelters(rng)},
        "supplier": {"inventory": inventory(rng)},
    }


def admissions(rng: random.Random, n: int = 60) -> list[dict[str, Any]]:
    """Hospital admissions for aggregate statistics (sensitive: length of stay, cost).

    Exactly one record is in the burns ward: the target of the demo's
    differencing attack.
    """
    out = []
    for i in range(1, n + 1):
        out.append(
            {
                "record_id": i,
                "district": rng.choice(["north", "river", "hill"]),
                "age_band": rng.choice(["0-17", "18-64", "65+"]),
                "ward": "burns" if i == 17 else rng.choice(["general", "icu", "pediatrics"]),
                "length_of_stay": rng.randint(1, 30),
                "cost": round(rng.uniform(500, 40000), 2),
            }
        )
    return out


#: the admissions dataset spec (federation.datasets.DatasetSpec JSON form)
ADMISSIONS_SPEC = {
    "name": "admissions",
    "id": "record_id",
    "sensitive": ["length_of_stay", "cost"],
    "quasi": ["district", "age_band", "ward"],
    "columns": {
        "record_id": "int",
        "district": "str",
        "age_band": "str",
        "ward": "str",
        "length_of_stay": "int",
        "cost": "float",
    },
    "scope": "org",
    "max_ids": 0,
}


# ------------------------------------------------------------------ scenario.yaml

SCENARIO_PATH = Path(__file__).with_name("scenario.yaml")
#: the largest scenario file read (bytes), checked before parsing.
MAX_SCENARIO_BYTES = 256 * 1024
_MAX_STEPS = 1000

_Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
_Text = Annotated[str, StringConstraints(max_length=200)]
_AgentRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9-]{0,62}$")]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Agent(_Data):
    """An agent an organization registers.

    Attributes:
        org: organization name (one of :data:`ORGS`).
        name: agent name, unique within its org.
        role: the role claim of its credential.
        scopes: the scopes of its credential.
        trust_tier: its trust tier (0-3).
    """

    org: _Name
    name: _Name
    role: _Name
    scopes: list[_Text] = Field(max_length=32)
    trust_tier: int = Field(ge=0, le=3)


class Validity(_Data):
    """Contract validity around the provisioning time, in whole days."""

    days_before: int = Field(ge=0, le=3650)
    days_after: int = Field(gt=0, le=3650)


class ContractTerms(_Data):
    """One contract between two of the organizations (unsigned; the dates come from :class:`Validity`).

    Attributes:
        id / title: contract id and title.
        provider / requester: organization names (:data:`ORGS`).
        purposes: purpose name → terms, as in a contract document (``policy.Purpose``).
        trust_ceiling: the highest effective trust τ granted, in [0, 1].
        obligations / trust_budget / rate_limit / session_limits: as in a contract document.
    """

    id: _Name
    version: int = Field(default=1, ge=1)
    title: _Text
    provider: _Name
    requester: _Name
    purposes: dict[_Name, Purpose] = Field(min_length=1, max_length=32)
    trust_ceiling: float = Field(ge=0.0, le=1.0)
    obligations: list[_Text] = Field(default=["retention:72h", "no-onward-sharing"], max_length=32)
    trust_budget: TrustBudget | None = None
    rate_limit: RateLimit | None = None
    session_limits: SessionLimits = SessionLimits(max_requests=None, max_fields=None)

    def document(self, now: dt.datetime, validity: Validity) -> dict[str, Any]:
        """The contract document (JSON form, unsigned) valid around ``now`` (UTC)."""

        def stamp(t: dt.datetime) -> str:
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")

        def did(org: str) -> str:
            return f"did:web:{org}.accord.test"

        def dump(m: BaseModel | None) -> dict[str, Any] | None:
            return None if m is None else m.model_dump(mode="json", exclude_unset=True)

        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "parties": {
                "provider": {"org": did(self.provider), "name": self.provider},
                "requester": {"org": did(self.requester), "name": self.requester},
            },
            "purposes": {name: dump(p) for name, p in self.purposes.items()},
            "trust_ceiling": self.trust_ceiling,
            "valid_from": stamp(now - dt.timedelta(days=validity.days_before)),
            "valid_until": stamp(now + dt.timedelta(days=validity.days_after)),
            "obligations": list(self.obligations),
            "trust_budget": dump(self.trust_budget),
            "rate_limit": dump(self.rate_limit),
            "session_limits": self.session_limits.model_dump(mode="json"),
        }


class AggregateQuery(_Data):
    """An aggregate query of a step: ``kind`` over ``column`` of the rows matching ``predicate``."""

    kind: Literal["count", "sum", "avg"]
    column: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
    predicate: dict[str, Any] = Field(max_length=8)


class Step(_Data):
    """One scripted exchange.

    Attributes:
        agent: ``"org/agent"`` of the requester.
        provider: provider org name.
        contract: contract id.
        purpose: purpose.
        resource: resource at the provider.
        subject: record key or ``"*"``.
        fields: requested fields.
        note: what the step shows.
        expect: ``"allow"`` or the expected refusal reason (e.g. ``"MISSING_SCOPE"``).
        aggregate: the aggregate query, or None for a record request.
        new_session: open a new session first instead of reusing the open one.
    """

    agent: _AgentRef
    provider: _Name
    contract: _Name
    purpose: _Name
    resource: _Name
    subject: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    fields: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(max_length=64)
    note: _Text = ""
    expect: Annotated[str, StringConstraints(pattern=r"^(allow|[A-Z][A-Z0-9_]{0,63})$")] = "allow"
    aggregate: AggregateQuery | None = None
    new_session: bool = False

    def aggregate_json(self) -> dict[str, Any] | None:
        """The aggregate query as the SDK sends it (``kind``, ``column``, ``predicate``), or None."""
        return None if self.aggregate is None else self.aggregate.model_dump(mode="json")


class Scenario(_Data):
    """The whole ``scenario.yaml``.

    Attributes:
        agents: the agents to register.
        validity: contract validity around the provisioning time.
        contracts: the contracts to sign and install.
        steps: the exchanges before the revocation.
        revoke: the ``org/agent`` the operator revokes between the two lists.
        after_revocation: the exchanges after it.
    """

    agents: list[Agent] = Field(min_length=1, max_length=64)
    validity: Validity
    contracts: list[ContractTerms] = Field(min_length=1, max_length=64)
    steps: list[Step] = Field(min_length=1, max_length=_MAX_STEPS)
    revoke: _AgentRef
    after_revocation: list[Step] = Field(max_length=_MAX_STEPS)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        """Every name a step, a contract or the revocation uses is declared, once."""
        agents = {f"{a.org}/{a.name}" for a in self.agents}
        if len(agents) != len(self.agents):
            raise ValueError("agents: an org/name appears twice")
        for a in self.agents:
            if a.org not in ORGS:
                raise ValueError(f"agents: unknown org {a.org!r} (one of {', '.join(ORGS)})")
        terms = {c.id: c for c in self.contracts}
        if len(terms) != len(self.contracts):
            raise ValueError("contracts: a contract id appears twice")
        for c in self.contracts:
            if c.provider not in ORGS or c.requester not in ORGS or c.provider == c.requester:
                raise ValueError(
                    f"contracts: {c.id}: provider and requester must be two of {', '.join(ORGS)}"
                )
        if self.revoke not in agents:
            raise ValueError(f"revoke: {self.revoke!r} is not a declared agent")
        for where, steps in (("steps", self.steps), ("after_revocation", self.after_revocation)):
            for i, s in enumerate(steps):
                if s.agent not in agents:
                    raise ValueError(f"{where}.{i}: agent {s.agent!r} is not a declared agent")
                if s.provider not in ORGS:
                    raise ValueError(f"{where}.{i}: unknown provider {s.provider!r}")
                c = terms.get(s.contract)
                if c is None:
                    if s.expect != "UNKNOWN_CONTRACT":
                        raise ValueError(
                            f"{where}.{i}: contract {s.contract!r} is not declared (expect UNKNOWN_CONTRACT)"
                        )
                elif c.provider != s.provider or s.purpose not in c.purposes:
                    raise ValueError(
                        f"{where}.{i}: contract {c.id} has provider {c.provider} and purposes "
                        f"{', '.join(c.purposes)}"
                    )
        return self

    def contract_documents(self, now: dt.datetime) -> list[dict[str, Any]]:
        """Every contract as an unsigned document valid around ``now`` (:meth:`ContractTerms.document`)."""
        return [c.document(now, self.validity) for c in self.contracts]


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Key path (sequence items by index) → 1-based line, from the YAML node tree."""
    out: dict[tuple[str, ...], int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                out.setdefault((*path, str(k.value)), k.start_mark.line + 1)
                walk(v, (*path, str(k.value)))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                out.setdefault((*path, str(i)), v.start_mark.line + 1)
                walk(v, (*path, str(i)))

    if root is not None:
        walk(root, ())
    return out


def load_scenario(path: Path = SCENARIO_PATH) -> Scenario:
    """Read and validate a scenario file (``scenario.yaml`` by default).

    Args:
        path: the YAML file (safe loader; anchors and merge keys allowed).

    Returns:
        The frozen :class:`Scenario`.

    Raises:
        ConfigError: ``CONFIG_INVALID``, in one line ``<path>[:<line>]: <field>: <problem>``:
            unreadable, larger than :data:`MAX_SCENARIO_BYTES`, not UTF-8, not
            YAML, or a field missing, unknown, of the wrong type or out of
            bounds, or a step naming an undeclared agent or contract.
    """
    p = Path(path)

    def fail(msg: str, field: str = "", line: int | None = None) -> ConfigError:
        where = f"{p}:{line}" if line else str(p)
        return ConfigError(
            f"{where}: {field + ': ' if field else ''}{msg}",
            metadata={"path": str(p), "field": field, "line": str(line or "")},
        )

    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read the scenario: {exc.strerror}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise fail(f"the scenario is larger than {MAX_SCENARIO_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        doc = yaml.safe_load(text)
        lines = _line_map(text)
    except UnicodeDecodeError:
        raise fail("the scenario is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise fail(
            f"not valid YAML: {getattr(exc, 'problem', None) or str(exc).splitlines()[0]}",
            line=mark.line + 1 if mark is not None else None,
        ) from None
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(x) for x in first["loc"])
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        msg = validation_message(first)
        if not loc and msg.startswith(("agents:", "contracts:", "revoke:", "steps.", "after_revocation.")):
            field, _, msg = msg.partition(": ")
            loc = tuple(field.split("."))
            line = lines.get(loc)
        raise fail(msg, ".".join(loc) or "scenario", line) from exc
