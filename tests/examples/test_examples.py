"""The framework examples (examples/) run with scripted models against real node processes.

Each agent, built in its framework, asks the hospital for triage data through
``accord mcp serve`` and must get only the contract's MNI fields. Skipped only
when the ``examples`` extra (the frameworks) is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from nodes.conftest import run, start

pytestmark = pytest.mark.xdist_group("examples")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MNI = {"patient_id", "triage_level", "mobility", "shelter"}


@pytest.fixture(scope="module")
def relief_dir(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("examples"), orgs=("hospital", "relief"), with_interop=False)
    yield f.layout.orgs["relief"]
    f.stop()


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"accord_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("example", "framework_module"),
    [
        ("langgraph_triage", "langgraph"),
        ("openai_agents_triage", "agents"),
        ("autogen_triage", "autogen_agentchat"),
        ("agentscope_triage", "agentscope"),
    ],
)
def test_framework_agent_gets_only_the_mni_fields(relief_dir, example, framework_module, monkeypatch):
    pytest.importorskip(framework_module, reason="the `examples` extra is not installed")
    monkeypatch.delenv("ACCORD_EXAMPLES_OPENAI_BASE_URL", raising=False)  # scripted model: no network
    out = run(_load(example).run(relief_dir))
    # the framework executed the tool: one request crossed, through the MCP server
    assert [c[0] for c in out["calls"]] == ["request_records"]
    body = out["calls"][0][2]
    assert body["decision"] == "allow" and body["receipt"]["verified"] is True
    assert out["records"] and all(set(r) <= MNI for r in out["records"])
    assert {"diagnosis", "hiv_status", "name"} <= set(body["stripped_fields"])
    assert out["final"]  # the agent finished its turn with an answer
