"""The Grafana dashboard and the alert rules name only series the node exports; promtool checks the rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs/deploy/prometheus/accord-rules.yml"
RULE_TESTS = ROOT / "docs/deploy/prometheus/accord-rules.test.yml"
DASHBOARD = ROOT / "docs/deploy/grafana/accord-node.json"
_SERIES = re.compile(r"\baccord_[a-z_]+")


def exported_series() -> set[str]:
    """Every series name the node's registry exposes (counters with _total, histograms with _bucket …)."""
    from prometheus_client import REGISTRY
    from prometheus_client.openmetrics.exposition import generate_latest

    import federation.observability  # noqa: F401  (registers the metrics)

    names = set()
    for fam in REGISTRY.collect():
        if fam.name.startswith("accord_"):
            names |= {
                fam.name,
                fam.name + "_total",
                fam.name + "_bucket",
                fam.name + "_sum",
                fam.name + "_count",
            }
    assert generate_latest(REGISTRY)  # the registry exposes without error
    return names


def test_dashboard_queries_only_exported_series():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    used = {m for e in exprs for m in _SERIES.findall(e)}
    assert used, "no accord_ series in the dashboard"
    missing = used - exported_series()
    assert not missing, f"dashboard queries series the node does not export: {sorted(missing)}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_alert_rules_cover_the_issue_and_name_exported_series():
    doc = yaml.safe_load(RULES.read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    for name in (
        "AccordEquivocation",
        "AccordWitnessLag",
        "AccordPolicyEngineFailures",
        "AccordAuthorizationDrift",
        "AccordAuditDenialSpike",
    ):
        assert name in rules
    used = {m for r in rules.values() for m in _SERIES.findall(r["expr"])}
    missing = used - exported_series()
    assert not missing, f"rules use series the node does not export: {sorted(missing)}"


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)
def test_promtool_checks_and_unit_tests_the_rules():
    p = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(
        ["promtool", "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert p.returncode == 0, p.stdout + p.stderr
