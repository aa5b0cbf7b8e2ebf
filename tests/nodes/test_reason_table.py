"""The one reason → gRPC status table (federation.reasons) covers every reason raised anywhere.

The walk reads the source, not a list kept by hand: exception classes'
``reason`` attributes, constant ``reason=`` arguments of error constructors,
the base Rego policy's deny reasons, and the reasons the reconstruction
auditor and the DP budget return. Fast: no processes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grpc
import pytest

from federation import reasons
from federation.errors import AuthenticationError, DeniedError, FederationError, NotFoundError
from federation.wire import status_code_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("federation", "credentials", "policy", "ledger")
CODE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def _python_files():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "pb" not in path.relative_to(ROOT).parts:
                yield path


def _raised_reasons(source: str) -> set[str]:
    """Reasons one module raises: ``reason = "X"`` in exception classes, ``FooError(..., reason="X")``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and [getattr(t, "id", None) for t in stmt.targets] == ["reason"]
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                ):
                    out.add(stmt.value.value)
        elif isinstance(node, ast.Call):
            callee = ast.unparse(node.func).rsplit(".", 1)[-1]
            if callee == "_refuse" and node.args:  # federation.negotiation._refuse(reason, ...)
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    out.add(first.value)
            if not (callee.endswith("Error") or callee in ("err_cls", "cls")):
                continue
            for kw in node.keywords:
                if kw.arg == "reason":
                    values = [kw.value]
                    if isinstance(kw.value, ast.IfExp):  # reason="A" if cond else "B"
                        values = [kw.value.body, kw.value.orelse]
                    for v in values:
                        if isinstance(v, ast.Constant) and isinstance(v.value, str):
                            out.add(v.value)
    return out


def _returned_codes(source: str) -> set[str]:
    """Reason codes a decision module returns as data (call arguments and assigned values)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        values: list[ast.AST] = []
        if isinstance(node, ast.Call):
            values = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.Assign):
            values = list(node.value.elts) if isinstance(node.value, ast.Tuple) else [node.value]
        for v in values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str) and CODE.match(v.value):
                out.add(v.value)
    return out - {"OK"}


def _rego_reasons() -> set[str]:
    """Deny reasons of the base policy: upper-case string literals, before any ``:<detail>``."""
    text = (ROOT / "policy" / "rego" / "accord.rego").read_text()
    return {m.group(1) for m in re.finditer(r'"([A-Z][A-Z_]+)(?::[^"]*)?"', text)}


def all_reasons() -> set[str]:
    found: set[str] = set()
    for path in _python_files():
        found |= _raised_reasons(path.read_text())
    for name in ("auditor.py", "dp.py"):
        found |= _returned_codes((ROOT / "policy" / name).read_text())
    return found | _rego_reasons()


def test_every_reason_raised_anywhere_is_in_the_table():
    found = all_reasons()
    missing = sorted(found - set(reasons.STATUS_BY_REASON))
    assert missing == [], f"reasons without a status in federation/reasons.py: {missing}"


def test_the_walk_sees_each_kind_of_source():
    found = all_reasons()
    # an error class attribute, a reason= argument, a Rego reason with a detail, an auditor and a DP reason
    for reason in (
        "AUTHORIZATION_DRIFT",
        "UNKNOWN_SESSION",
        "TRUST_TOO_LOW",
        "AUDIT_CAPACITY",
        "UNSUPPORTED_LEDGER_FORMAT",
    ):
        assert reason in found
    assert "PRIVACY_BUDGET_EXHAUSTED" in _returned_codes((ROOT / "policy" / "dp.py").read_text())


def test_the_walk_catches_a_new_reason():
    src = (
        'class E(Exception):\n    reason = "NEW_ONE"\n\n'
        'def f():\n    raise DeniedError("x", reason="NEW_TWO")\n'
    )
    assert _raised_reasons(src) == {"NEW_ONE", "NEW_TWO"}


def test_an_explicit_status_is_given_only_where_allowed():
    sites = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "status" for k in node.keywords):
                callee = ast.unparse(node.func).rsplit(".", 1)[-1]
                if callee.endswith("Error") or callee in ("err_cls", "cls"):
                    sites.add(str(path.relative_to(ROOT)))
    assert sites <= reasons.EXPLICIT_STATUS_MODULES, sorted(sites - reasons.EXPLICIT_STATUS_MODULES)


def test_every_status_is_a_grpc_status():
    codes = {c.name for c in grpc.StatusCode}
    assert set(reasons.STATUS_BY_REASON.values()) <= codes


@pytest.mark.parametrize("reason,status", sorted(reasons.STATUS_BY_REASON.items()))
def test_the_translator_uses_the_table(reason, status):
    # whichever class carries it, a reason in the table travels under the table's status
    for cls in (FederationError, DeniedError, AuthenticationError, NotFoundError):
        assert status_code_for(cls("x", reason=reason)).name == status


def test_errors_of_other_packages_follow_the_table():
    from credentials.errors import RevokedError
    from ledger.errors import StorageError
    from policy.errors import ContractSignatureError

    assert status_code_for(RevokedError("revoked")) == grpc.StatusCode.UNAUTHENTICATED
    assert status_code_for(ContractSignatureError("x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_code_for(StorageError("x")) == grpc.StatusCode.INTERNAL


def test_a_reason_that_is_data_keeps_its_class_status():
    # a contract's own Rego hook may deny with a code of its own: PERMISSION_DENIED
    assert "HOOK_SAYS_NO" not in reasons.STATUS_BY_REASON
    assert status_code_for(DeniedError("x", reason="HOOK_SAYS_NO")) == grpc.StatusCode.PERMISSION_DENIED
    # an error rebuilt from a peer's answer keeps the status the peer sent
    err = FederationError("x", reason="PEER_ONLY_REASON", status="ABORTED")
    assert status_code_for(err) == grpc.StatusCode.ABORTED
    assert status_code_for(ValueError("boom")) == grpc.StatusCode.INTERNAL
