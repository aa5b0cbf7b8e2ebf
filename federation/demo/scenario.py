"""Data, agents and contracts of the disaster-response scenario.

Three organizations respond to a flood: a **hospital** (patients, beds,
pharmacy), a disaster-**relief** agency (shelters, field teams) and a
medical **supplier** (inventory, deliveries). Records are generated from a
fixed seed, so every run shares the same data.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

ORGS = ("hospital", "relief", "supplier")

#: (org, agent name, role, scopes, trust tier)
AGENTS: tuple[tuple[str, str, str, tuple[str, ...], int], ...] = (
    ("relief", "triage-coordinator", "triage-coordinator", ("patients:read", "supplies:read"), 2),
    ("relief", "logistics", "logistics-officer", ("supplies:read",), 1),
    ("relief", "field-volunteer", "field-volunteer", ("patients:read",), 0),
    ("hospital", "bed-manager", "bed-manager", ("shelters:read",), 2),
    ("hospital", "pharmacy", "pharmacist", ("supplies:read",), 1),
    ("supplier", "dispatcher", "dispatcher", ("shelters:read",), 1),
)

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


def _did(org: str) -> str:
    return f"did:web:{org}.accord.test"


def contracts(now: dt.datetime) -> list[dict[str, Any]]:
    """The contracts between the organizations (unsigned dicts)."""
    start = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def contract(
        cid: str,
        title: str,
        provider: str,
        requester: str,
        purposes: dict[str, Any],
        ceiling: float,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "version": 1,
            "title": title,
            "parties": {
                "provider": {"org": _did(provider), "name": provider},
                "requester": {"org": _did(requester), "name": requester},
            },
            "purposes": purposes,
            "trust_ceiling": ceiling,
            "valid_from": start,
            "valid_until": end,
            "obligations": extra.pop("obligations", ["retention:72h", "no-onward-sharing"]),
            "trust_budget": extra.pop("trust_budget", None),
            "rate_limit": extra.pop("rate_limit", None),
            "session_limits": extra.pop("session_limits", {"max_requests": None, "max_fields": None}),
            **extra,
        }

    return [
        contract(
            "relief-hospital-triage",
            "Flood triage coordination",
            "hospital",
            "relief",
            {
                "triage-coordination": {
                    "resources": ["patients"],
                    "subjects": ["*"],
                    "mni": ["patient_id", "triage_level", "mobility", "shelter"],
                    "optional": {
                        "age": {"sensitivity": 1, "min_trust": 0.5},
                        "allergies": {"sensitivity": 2, "min_trust": 0.7},
                    },
                    "required_scopes": ["patients:read"],
                    "max_records": 20,
                },
                "surge-planning": {
                    "resources": ["admissions"],
                    "subjects": ["*"],
                    "aggregates": {
                        "dataset": "admissions",
                        "kinds": ["count", "sum", "avg"],
                        "columns": ["length_of_stay"],
                        "allow_ids": False,
                    },
                    "required_scopes": ["supplies:read"],
                },
            },
            0.8,
            trust_budget={"units": 6, "window_seconds": 3600},
            rate_limit={"requests": 500, "window_seconds": 60},
        ),
        contract(
            "hospital-relief-shelters",
            "Shelter capacity for bed planning",
            "relief",
            "hospital",
            {
                "bed-planning": {
                    "resources": ["shelters"],
                    "subjects": ["*"],
                    "mni": ["shelter_id", "capacity", "occupancy", "location"],
                    "optional": {"needs": {"sensitivity": 1, "min_trust": 0.4}},
                    "required_scopes": ["shelters:read"],
                }
            },
            0.9,
        ),
        contract(
            "relief-supplier-procurement",
            "Emergency procurement",
            "supplier",
            "relief",
            {
                "emergency-procurement": {
                    "resources": ["inventory"],
                    "subjects": ["*"],
                    "mni": ["sku", "name", "stock", "warehouse"],
                    "optional": {"unit_price": {"sensitivity": 1, "min_trust": 0.6}},
                    "required_scopes": ["supplies:read"],
                }
            },
            0.7,
        ),
        contract(
            "hospital-supplier-pharmacy",
            "Pharmacy restock",
            "supplier",
            "hospital",
            {
                "pharmacy-restock": {
                    "resources": ["inventory"],
                    "subjects": ["*"],
                    "mni": ["sku", "name", "stock"],
                    "required_scopes": ["supplies:read"],
                }
            },
            0.8,
        ),
        contract(
            "supplier-relief-delivery",
            "Delivery routing to shelters",
            "relief",
            "supplier",
            {
                "delivery-routing": {
                    "resources": ["shelters"],
                    "subjects": ["*"],
                    "mni": ["shelter_id", "location", "needs"],
                    "required_scopes": ["shelters:read"],
                }
            },
            0.8,
        ),
    ]
