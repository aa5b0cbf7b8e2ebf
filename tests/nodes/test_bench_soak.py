"""``accord bench soak`` for a few seconds: no errors, and the report carries the RSS of each process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.xdist_group("soak")


def test_soak_report_has_no_errors_and_rss_at_start_and_end():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "federation.cli.main",
            "bench",
            "soak",
            "--minutes",
            "0.05",
            "--in-flight",
            "2",
        ]
        + ["--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["errors"] == 0 and report["error_reasons"] == {}
    assert report["calls"] > 0 and report["in_flight"] == 2
    assert report["minutes"] and sum(b["calls"] for b in report["minutes"]) == report["calls"]
    assert all(b["throughput"] > 0 and b["errors"] == 0 for b in report["minutes"])
    assert {"requester node", "provider node"} <= set(report["rss"])
    for name, rss in report["rss"].items():
        assert rss["start_kib"] > 0 and rss["end_kib"] > 0, name
        assert rss["growth_kib"] == rss["end_kib"] - rss["start_kib"]
    assert set(report["load_average"]) == {"start", "end"}
