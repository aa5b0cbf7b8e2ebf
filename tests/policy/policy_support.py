"""Shared helpers of the policy tests (constants, keys, inputs)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from policy import Contract, DecisionInput

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
PROVIDER = "did:web:hospital-a.example"
REQUESTER = "did:web:lab-b.example"
HOSPITAL_ID = "urn:accord:contract:hospital-research"
TABLE_CONTRACTS = [
    "hospital.yaml",
    "clinic.yaml",
    "open.yaml",
    "expired.yaml",
    "retired.yaml",
    "digits.yaml",
]


def seed_for(org: str) -> bytes:
    """Deterministic 32-byte test seed per org (tests only)."""
    return hashlib.sha256(b"accord-test-seed:" + org.encode()).digest()


def public_key(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def resolver(*orgs: str) -> Callable[[str], bytes]:
    keys = {f"{o}#key-1": public_key(seed_for(o)) for o in orgs}

    def resolve(vm: str) -> bytes:
        return keys[vm]

    return resolve


def load_contract(name: str) -> Contract:
    return Contract.load(DATA / name)


def make_input(**overrides: Any) -> DecisionInput:
    base: dict[str, Any] = {
        "contract_id": HOSPITAL_ID,
        "purpose": "research",
        "requester_org": REQUESTER,
        "provider_org": PROVIDER,
        "requester_agent": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "agent_claims": {"org": REQUESTER, "scopes": ["data:read"]},
        "requested_fields": ("patient.age",),
        "effective_trust": 0.7,
        "budget_used": 0.0,
        "session": {"requests": 0, "fields_released": 0, "denials": 0},
        "now": NOW,
        "resource": "cohort",
        "subject": "*",
    }
    base.update(overrides)
    return DecisionInput(**base)
