"""Two decision points (two replicas of a node) sharing a budget key through ``shared_keys``."""

from __future__ import annotations

import contextlib
import copy
import threading
from datetime import timedelta

from policy_support import DATA, HOSPITAL_ID, NOW, PROVIDER, REQUESTER

from policy import Contract, PolicyDecisionPoint, RegopyEngine, TrustBook, TrustConfig

CLAIMS = {"org": REQUESTER, "scopes": ["data:read"]}
FIELDS = ["patient.age", "patient.zip3"]  # zip3 costs 0.2 of a 0.5 budget: two releases per window


class SharedRows:
    """What the node's database is to its replicas: one row set per key, one lock per key."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()
        self.entered = 0

    def __call__(self, key):
        @contextlib.contextmanager
        def cm():
            with self.lock:
                self.entered += 1
                got = copy.deepcopy(self.rows.get(key, {"budgets": None, "requests": None}))
                yield got
                self.rows[key] = copy.deepcopy(got)

        return cm()


def _pdp(shared) -> PolicyDecisionPoint:
    p = PolicyDecisionPoint(RegopyEngine(), trust=TrustBook(TrustConfig(initial=0.7)), shared_keys=shared)
    p.load([Contract.load(DATA / "hospital.yaml")])
    return p


def _ask(p: PolicyDecisionPoint, i: int):
    return p.decide(
        contract_id=HOSPITAL_ID,
        purpose="research",
        requester_org=REQUESTER,
        provider_org=PROVIDER,
        requester_agent="did:key:z6Mk",
        agent_claims=CLAIMS,
        requested_fields=FIELDS,
        session={"requests": 0},
        now=NOW + timedelta(seconds=i),
        resource="cohort",
        subject="*",
    )


def test_a_budget_is_spent_once_across_two_decision_points_sharing_rows() -> None:
    shared = SharedRows()
    a, b = _pdp(shared), _pdp(shared)
    got = [_ask((a, b)[i % 2], i).released_fields for i in range(6)]
    assert sum("patient.zip3" in r for r in got) == 2, got
    assert shared.entered == 6
    row = shared.rows[(HOSPITAL_ID, REQUESTER)]
    assert row["budgets"]["charges"] and row["requests"]["charges"]


def test_without_shared_rows_each_decision_point_spends_its_own_budget() -> None:
    """The control: what replicas would do without ``shared_keys`` (the budget doubles)."""
    a, b = _pdp(None), _pdp(None)
    got = [_ask((a, b)[i % 2], i).released_fields for i in range(6)]
    assert sum("patient.zip3" in r for r in got) == 4
