"""Run the Rego unit tests of policy/rego/accord_test.rego through regopy."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest
import regopy

from policy import base_policy

REGO = resources.files("policy").joinpath("rego")
TEST_SOURCE = REGO.joinpath("accord_test.rego").read_text()
FIXTURES = json.loads(REGO.joinpath("accord_test_fixtures/data.json").read_text())
TEST_NAMES = re.findall(r"(?m)^(test_\w+)\s+if\b", TEST_SOURCE)


def run_rego_test(name: str, test_source: str = TEST_SOURCE) -> bool:
    rego = regopy.Interpreter()
    rego.add_module("accord.rego", base_policy())
    rego.add_module("accord_test.rego", test_source)
    rego.add_data({"accord_test_fixtures": FIXTURES})
    out = rego.query(f"data.accord_test.{name}")
    assert out.ok(), str(out)
    return bool(out.results and out.results[0].expressions == [True])


def test_there_are_rego_tests() -> None:
    assert len(TEST_NAMES) >= 15
    assert len(set(TEST_NAMES)) == len(TEST_NAMES)


@pytest.mark.parametrize("name", TEST_NAMES)
def test_rego(name: str) -> None:
    assert run_rego_test(name), f"Rego test {name} failed"


def test_runner_detects_a_failing_rego_test() -> None:
    broken = TEST_SOURCE + (
        '\ntest_deliberately_wrong if {\n\tdecide({"recent_requests": 10}).allow\n}\n'
    )
    assert run_rego_test("test_mni_allowed", broken)
    assert not run_rego_test("test_deliberately_wrong", broken)
