"""Shared constants and helpers of the credentials tests (a uniquely named module)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

VECTORS = Path(__file__).parent / "vectors" / "w3c-vc-di-eddsa"
RDFC = VECTORS / "eddsa-rdfc-2022"
JCS = VECTORS / "eddsa-jcs-2022"

ORG_DID = "did:web:hospital.accord.test"
ORG_VM = ORG_DID + "#key-1"
VERIFIER_DID = "did:web:lab.accord.test"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SUITES = ["eddsa-rdfc-2022", "eddsa-jcs-2022"]


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
