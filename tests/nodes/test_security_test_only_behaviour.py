"""Issue #10.8: no test-only behaviour in production code.

Misbehaving nodes are built from substituted parts in ``interop_tests.misbehaving``;
the node's configuration has no switch left that turns policy, the gate, receipts
or presentation checks off, and refuses the old key outright.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomli_w

from federation.config import CONFIG_NAME, load_config
from federation.errors import ConfigError
from federation.identity import init_node
from federation.node import Node
from interop_tests.misbehaving import BEHAVIOURS, node_class

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("switches", [["skip_gate"], ["ignore_policy", "skip_presentation_check"], []])
def test_config_refuses_the_old_misbehaviour_switch(tmp_path, switches):
    init_node(tmp_path, org_name="hospital", listen="127.0.0.1:0", force=True)
    path = tmp_path / CONFIG_NAME
    import tomllib

    data = tomllib.loads(path.read_text())
    data["unsafe_misbehaviour"] = switches
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(ConfigError, match="unsafe_misbehaviour"):
        load_config(tmp_path)


def test_config_refuses_any_unknown_key(tmp_path):
    init_node(tmp_path, org_name="hospital", listen="127.0.0.1:0", force=True)
    path = tmp_path / CONFIG_NAME
    path.write_text(path.read_text() + "\nskip_gate = true\n")
    with pytest.raises(ConfigError, match="skip_gate"):
        load_config(tmp_path)


def _names_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return names


def test_no_production_module_names_a_misbehaviour():
    """No string, attribute or name in the shipped packages turns a misbehaviour on."""
    forbidden = {"unsafe_misbehaviour", *BEHAVIOURS}
    offenders = []
    for pkg in ("federation", "policy", "credentials", "ledger"):
        for path in (ROOT / pkg).rglob("*.py"):
            hits = forbidden & _names_in(path)
            if hits:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(hits)}")
    assert offenders == []


def test_misbehaving_nodes_are_subclasses_built_in_test_code():
    assert node_class([]) is Node
    cls = node_class(["skip_gate", "bad_receipt"])
    assert issubclass(cls, BEHAVIOURS["skip_gate"]) and issubclass(cls, BEHAVIOURS["bad_receipt"])
    assert cls.__module__ == "interop_tests.misbehaving"
    with pytest.raises(ValueError, match="unknown behaviour"):
        node_class(["skip_gaet"])
