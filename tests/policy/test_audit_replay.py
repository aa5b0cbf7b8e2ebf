"""``accord audit replay`` and policy.replay, on the fixtures in audit_data/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from federation.cli.audit import app
from policy.replay import ReplayError, load_dataset, parse_queries, replay

DATA = Path(__file__).parent / "audit_data"
DATASET = str(DATA / "employees.json")
QUERIES = str(DATA / "queries.jsonl")
COALITIONS = str(DATA / "coalitions.json")
runner = CliRunner()

A, EMPTY, RISK = "answer", "deny", "deny"
EXPECTED = {
    # index: (decision, reason, answer) per scope
    "agent": [
        (A, "OK", 491000),
        (A, "OK", 432000),
        (A, "OK", 1),
        (A, "OK", 54500.0),
        (A, "OK", 432000),
        (EMPTY, "EMPTY_SELECTION", None),
        (RISK, "RECONSTRUCTION_RISK", None),
    ],
    "org": [
        (A, "OK", 491000),
        (RISK, "RECONSTRUCTION_RISK", None),
        (A, "OK", 1),
        (A, "OK", 54500.0),
        (A, "OK", 432000),
        (EMPTY, "EMPTY_SELECTION", None),
        (RISK, "RECONSTRUCTION_RISK", None),
    ],
    "coalition": [
        (A, "OK", 491000),
        (RISK, "RECONSTRUCTION_RISK", None),
        (A, "OK", 1),
        (A, "OK", 54500.0),
        (RISK, "RECONSTRUCTION_RISK", None),
        (EMPTY, "EMPTY_SELECTION", None),
        (RISK, "RECONSTRUCTION_RISK", None),
    ],
}
EXPECTED["global"] = EXPECTED["coalition"]


def invoke(*args: str):
    return runner.invoke(app, ["replay", "--dataset", DATASET, "--queries", QUERIES, *args])


@pytest.mark.parametrize("scope", sorted(EXPECTED))
def test_replay_json(scope):
    res = invoke("--scope", scope, "--coalitions", COALITIONS, "--json")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert lines == [
        {"index": i, "decision": d, "reason": r, "answer": a} for i, (d, r, a) in enumerate(EXPECTED[scope])
    ]


def test_coalition_scope_without_declared_coalitions_is_per_org():
    res = invoke("--scope", "coalition", "--json")
    assert res.exit_code == 0
    decisions = [json.loads(x)["decision"] for x in res.stdout.splitlines()]
    assert decisions == [d for d, _, _ in EXPECTED["org"]]


def test_replay_text_output():
    res = invoke("--scope", "org")
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].split("\t") == ["0", "answer", "OK", "491000"]
    assert lines[1].split("\t") == ["1", "deny", "RECONSTRUCTION_RISK"]
    assert len(lines) == 7


def test_no_ids_flag_refuses_id_predicates():
    res = invoke("--scope", "org", "--no-ids")
    assert res.exit_code == 1
    assert "line 7" in res.stderr and "INVALID_REPLAY_INPUT" in res.stderr
    assert res.stdout == ""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    ("dataset", "queries", "needle"),
    [
        (None, "{", "line 1: not JSON"),
        (
            None,
            '{"requester_org":"A","agent":"a","kind":"sum","predicate":{"col":"salary","op":">","val":1}}',
            "sensitive",
        ),
        (None, '{"requester_org":"A","agent":"a","kind":"median","predicate":{}}', "kind"),
        (None, '{"requester_org":"A","agent":"a","kind":"sum"}', "predicate"),
        (None, "[1]", "expected a JSON object"),
        ('{"id":"emp"}', "", "dataset key"),
        (
            '{"id":"emp","sensitive":"s","columns":["x"],"records":[{"emp":1,"s":1,"x":1},{"emp":2,"s":2,"x":"a"}]}',
            "",
            "mixed value types",
        ),
        (
            '{"id":"emp","sensitive":"s","columns":[],"records":[{"emp":1,"s":"high"}]}',
            "",
            "sensitive column",
        ),
        (
            '{"id":"emp","sensitive":"s","columns":[],"records":[{"emp":1,"s":1},{"emp":1,"s":2}]}',
            "",
            "duplicate id",
        ),
        ("not json", "", "is not JSON"),
        # deep nesting made json.loads raise RecursionError: a stack trace instead of one error line
        (None, "[" * 100_000, "line 1: JSON nested too deeply"),
        ("[" * 100_000, "", "nested too deeply"),
    ],
)
def test_bad_input_one_error_line(tmp_path, dataset, queries, needle):
    ds = DATASET if dataset is None else write(tmp_path, "d.json", dataset)
    qs = write(tmp_path, "q.jsonl", queries)
    res = runner.invoke(app, ["replay", "--dataset", ds, "--queries", qs, "--scope", "org"])
    assert res.exit_code == 1
    assert res.stdout == ""
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("accord: error: ") and needle in err[0], err


def test_unreadable_files_and_bad_scope(tmp_path):
    res = runner.invoke(
        app,
        [
            "replay",
            "--dataset",
            str(tmp_path / "nope.json"),
            "--queries",
            QUERIES,
            "--scope",
            "org",
        ],
    )
    assert res.exit_code == 1 and "UNREADABLE_INPUT" in res.stderr
    res = runner.invoke(app, ["replay", "--dataset", DATASET, "--queries", str(tmp_path), "--scope", "org"])
    assert res.exit_code == 1 and "UNREADABLE_INPUT" in res.stderr
    res = invoke("--scope", "planet")
    assert res.exit_code == 1 and "INVALID_SCOPE" in res.stderr
    bad = write(tmp_path, "c.json", '{"A": 1}')
    res = invoke("--scope", "coalition", "--coalitions", bad)
    assert res.exit_code == 1 and "coalitions" in res.stderr


def test_library_replay_matches_cli():
    ds = load_dataset(json.loads(Path(DATASET).read_text()))
    assert ds.schema.columns == {
        "emp": "int",
        "salary": "int",
        "age": "int",
        "dept": "str",
        "remote": "bool",
        "zip": "str",
    }
    qs = parse_queries(Path(QUERIES).read_text().splitlines(), ds)
    out = [(r.decision, r.reason, r.answer) for r in replay(ds, qs, scope="agent")]
    assert out == EXPECTED["agent"]
    with pytest.raises(ReplayError) as ei:
        parse_queries(["", "{}"], ds)
    assert ei.value.metadata["line"] == "2" and ei.value.caller_fault


def test_sparse_huge_ids_are_fine(tmp_path):
    recs = [{"id": 10**15 + 7 * i, "v": i, "g": i % 2} for i in range(6)]
    ds = write(
        tmp_path,
        "d.json",
        json.dumps({"id": "id", "sensitive": "v", "columns": ["g"], "records": recs}),
    )
    qs = write(
        tmp_path,
        "q.jsonl",
        "\n".join(
            json.dumps({"requester_org": "A", "agent": "a", "kind": "sum", "predicate": p})
            for p in ({}, {"not": {"ids": [10**15]}})
        ),
    )
    res = runner.invoke(app, ["replay", "--dataset", ds, "--queries", qs, "--scope", "org", "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["decision"] for x in res.stdout.splitlines()] == ["answer", "deny"]


def test_decisions_do_not_depend_on_sensitive_values(tmp_path):
    """Simulatability: changing every salary changes answers, never decisions."""
    obj = json.loads(Path(DATASET).read_text())
    for r in obj["records"]:
        if r["salary"] is not None:
            r["salary"] = r["salary"] * 7 + 13
    other = write(tmp_path, "other.json", json.dumps(obj))
    for scope in ("agent", "org", "global"):
        a = invoke("--scope", scope, "--json")
        b = runner.invoke(
            app, ["replay", "--dataset", other, "--queries", QUERIES, "--scope", scope, "--json"]
        )
        da = [json.loads(x) for x in a.stdout.splitlines()]
        db = [json.loads(x) for x in b.stdout.splitlines()]
        assert [(x["decision"], x["reason"]) for x in da] == [(x["decision"], x["reason"]) for x in db]
        assert [x["answer"] for x in da] != [x["answer"] for x in db]
