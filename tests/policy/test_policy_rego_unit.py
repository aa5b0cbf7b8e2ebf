"""Run the Rego unit tests of policy/rego/accord_test.rego in CI, through regopy.

``accord_test.rego`` is a standard OPA test file (``opa test policy/rego/``):
its helper functions ``decide(overrides)`` / ``decide_with(overrides,
contracts)`` evaluate ``data.accord.decision`` under ``with input as … with
data.accord_contracts as …``. rego-cpp 1.x (regopy 1.5) crashes on ``with``
against this policy (segfault / "shape rego-localref has no field
rego-refhead"), so this harness evaluates each ``decide…(<JSON literal>)``
call itself with the embedded engine's bundle, substitutes the decision as a
literal, and then evaluates the ``test_`` rule: same assertions, no ``with``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
import regopy

from policy import base_policy

REGO = resources.files("policy").joinpath("rego")
TEST_SOURCE = REGO.joinpath("accord_test.rego").read_text()
FIXTURES = json.loads(REGO.joinpath("accord_test_fixtures/data.json").read_text())
CONTRACT = FIXTURES["contract"]
BASE_INPUT = FIXTURES["base_input"]


def _rules(source: str) -> dict[str, str]:
    """Map test rule name -> body text (rules start at column 0, end at '}')."""
    out = {}
    for m in re.finditer(r"(?ms)^(test_\w+) if \{\n(.*?)^\}", source):
        out[m.group(1)] = m.group(2)
    return out


def _balanced(text: str, start: int) -> int:
    """Index just past the balanced (...) group opening at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced call")


def _decide(overrides: dict[str, Any], contracts: dict[str, Any]) -> Any:
    rego = regopy.Interpreter()
    rego.add_module("accord.rego", base_policy())
    rego.add_data({"accord_contracts": contracts})
    rego.set_input(regopy.Input({**BASE_INPUT, **overrides}))
    out = rego.query("data.accord.decision")
    assert out.ok(), str(out)
    return out.results[0].expressions[0]


def _expand(body: str, local: dict[str, Any]) -> str:
    """Replace decide(...)/decide_with(...) calls by their decision literals."""
    while True:
        m = re.search(r"\b(decide_with|decide)\(", body)
        if not m:
            return body
        end = _balanced(body, m.end() - 1)
        args = body[m.end() : end - 1]
        if m.group(1) == "decide":
            decision = _decide(json.loads(args), {"c1": CONTRACT})
        else:
            obj, var = args.rsplit(",", 1)
            decision = _decide(json.loads(obj), local[var.strip()])
        body = body[: m.start()] + json.dumps(decision) + body[end:]


def _locals(body: str) -> dict[str, Any]:
    """Evaluate `name := {"c1": object.union(contract, {...})}` bindings (fixtures)."""
    out = {}
    for m in re.finditer(r'(?m)^\t(\w+) := \{"c1": object\.union\(contract, (\{.*\})\)\}$', body):
        out[m.group(1)] = {"c1": {**CONTRACT, **json.loads(m.group(2))}}
    return out


def run_rego_test(name: str, source: str = TEST_SOURCE) -> bool:
    body = _rules(source)[name]
    expanded = _expand(body, _locals(body))
    expanded = re.sub(
        r'(?m)^\t\w+ := \{"c1": object\.union\(contract, \{.*\}\)\}$', "\ttrue", expanded
    )
    module = f"package accord_test_run\n\nimport rego.v1\n\n{name} if {{\n{expanded}}}\n"
    rego = regopy.Interpreter()
    rego.add_module("run.rego", module)
    out = rego.query(f"data.accord_test_run.{name}")
    assert out.ok(), str(out)
    return bool(out.results and out.results[0].expressions == [True])


TEST_NAMES = sorted(_rules(TEST_SOURCE))


def test_there_are_rego_tests() -> None:
    assert len(TEST_NAMES) >= 15
    assert len(TEST_NAMES) == len(re.findall(r"(?m)^test_\w+ if", TEST_SOURCE))


@pytest.mark.parametrize("name", TEST_NAMES)
def test_rego(name: str) -> None:
    assert run_rego_test(name), f"Rego test {name} failed"


def test_harness_detects_a_failing_rego_test() -> None:
    broken = (
        TEST_SOURCE + '\ntest_deliberately_wrong if {\n\tdecide({"recent_requests": 10}).allow\n}\n'
    )
    assert run_rego_test("test_rate_limited", broken)
    assert not run_rego_test("test_deliberately_wrong", broken)
