"""Unexpected errors are logged without local variables (a request's contents never reach node.log)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import structlog
from federation.observability import configure_logging
configure_logging(json_logs={json_logs})
log = structlog.get_logger("t")
def handler(presentation):
    raise RuntimeError("boom")
try:
    handler("SECRET-PRESENTATION-" + "x" * 50)
except RuntimeError:
    log.exception("unexpected error in RPC")
"""


@pytest.mark.parametrize("json_logs", [False, True])
def test_tracebacks_carry_no_local_variables(json_logs):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(json_logs=json_logs)], capture_output=True, text=True, check=True
    )
    assert "RuntimeError" in out.stderr and "boom" in out.stderr
    assert "SECRET-PRESENTATION" not in out.stderr
