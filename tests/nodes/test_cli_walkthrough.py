"""What the operator walkthrough of issue #11 hit, command by command (offline node directories).

Each test drives one case of the walkthrough through ``accord``'s real entry
point (``federation.cli.main.main``, in process: the same error handling as
the console script) and fails on the behaviour the walkthrough saw.
"""

from __future__ import annotations

import json
import sys
import tomllib
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.xdist_group("cli")


def accord(capsys, *args):
    """Run ``accord ARGS`` in process; returns (exit code, stdout, stderr)."""
    from federation.cli.main import main

    capsys.readouterr()
    old = sys.argv
    sys.argv = ["accord", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def ok(capsys, *args) -> str:
    code, out, err = accord(capsys, *args)
    assert code == 0, err
    return out


def one_line_error(code: int, err: str, reason: str) -> None:
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith(f"accord: error: {reason}: "), err
    assert "Traceback" not in err and "internal error" not in err


@pytest.fixture
def node(tmp_path, capsys):
    d = tmp_path / "alpha"
    ok(capsys, "node", "init", "--org", "alpha", "--dir", d, "--listen", "127.0.0.1:7400")
    return d


def test_version(capsys):
    out = ok(capsys, "--version")
    assert out.startswith("accord ") and out.split()[1][0].isdigit()


def test_dids_and_user_text_print_literally(node, capsys):
    # Rich turned ":key:" into an emoji (did🔑z6Mk…) and would render markup in a role
    out = ok(
        capsys,
        "agent",
        "register",
        "--dir",
        node,
        "--name",
        "bot",
        "--role",
        "[red]analyst[/]",
        "--scope",
        "x:read",
    )
    assert "did:key:z6Mk" in out and "\N{KEY}" not in out
    listed = ok(capsys, "agent", "list", "--dir", node)
    assert "did:key:z6Mk" in listed and "\N{KEY}" not in listed
    assert "[red]analyst[/]" in listed
    status = ok(capsys, "node", "status", "--dir", node)
    assert "did:web:alpha.accord.test" in status


def test_ledger_verify_prints_a_report_not_a_repr(node, capsys):
    out = ok(capsys, "ledger", "verify", "--dir", node)
    assert out.startswith("ledger verify: ok: 0 entries") and "FsckReport" not in out
    doc = json.loads(ok(capsys, "ledger", "verify", "--dir", node, "--json"))
    assert doc == {
        "ok": True,
        "entries_checked": 0,
        "integrated_size": 0,
        "checkpoints_checked": 0,
        "first_bad_index": None,
        "problems": [],
    }


def test_csv_with_a_short_row_names_file_and_line(node, tmp_path, capsys):
    csv_file = tmp_path / "stats.csv"
    csv_file.write_text("id,age,income\n1,30,100\n2,41\n3,50,300\n")
    code, _, err = accord(
        capsys,
        "dataset",
        "register",
        "stats",
        "--dir",
        node,
        "--id",
        "id",
        "--sensitive",
        "income",
        "--csv",
        csv_file,
    )
    one_line_error(code, err, "BAD_DATASET")
    assert f"{csv_file}:3: expected 3 fields" in err
    assert json.loads(ok(capsys, "dataset", "list", "--dir", node, "--json")) == []  # nothing half-written


@pytest.mark.parametrize(
    "url", ["not a url", "postgres://u:hunter2@db/accord", "mysql://u:hunter2@db/accord", "sqlite://"]
)
def test_bad_database_url_refused_at_init(tmp_path, capsys, url):
    d = tmp_path / "n"
    code, _, err = accord(capsys, "node", "init", "--org", "n", "--dir", d, "--database-url", url)
    one_line_error(code, err, "CONFIG_INVALID")
    assert "--database-url" in err and "hunter2" not in err
    assert not (d / "node.toml").exists() and not (d / "keys").exists()


def test_bad_database_url_in_node_toml_names_file_field_and_line(node, capsys):
    cfg = node / "node.toml"
    text = cfg.read_text()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("database_url"))
    cfg.write_text(
        text.replace('database_url = "sqlite:///node.db"', 'database_url = "oracle://x:hunter2@h/db"')
    )
    code, _, err = accord(capsys, "agent", "list", "--dir", node)
    one_line_error(code, err, "CONFIG_INVALID")
    assert f"{cfg}:{line}: database_url: unsupported database" in err and "hunter2" not in err


def test_unreachable_database_is_one_line(node, capsys):
    cfg = node / "node.toml"
    url = "postgresql+psycopg://accord:hunter2@127.0.0.1:1/accord?connect_timeout=2"
    cfg.write_text(cfg.read_text().replace('"sqlite:///node.db"', json.dumps(url)))
    code, _, err = accord(capsys, "agent", "list", "--dir", node)
    one_line_error(code, err, "DATABASE_UNAVAILABLE")
    assert "hunter2" not in err


@pytest.mark.parametrize(
    "command", [("peer", "list"), ("contract", "list"), ("agent", "list"), ("ledger", "status")]
)
def test_commands_on_a_directory_that_is_not_a_node(tmp_path, capsys, command):
    code, out, err = accord(capsys, *command, "--dir", tmp_path)
    one_line_error(code, err, "CONFIG_INVALID")
    assert "is not a node directory" in err and out == ""


def _pair(tmp_path, capsys, *names):
    dirs = {}
    for name in names:
        d = tmp_path / name
        ok(capsys, "node", "init", "--org", name, "--dir", d, "--listen", "127.0.0.1:7400")
        ok(capsys, "peer", "export-bundle", "--dir", d, "--out", tmp_path / f"{name}.json")
        dirs[name] = d
    return dirs


def test_contract_with_an_unpinned_party_says_so(tmp_path, capsys):
    d = _pair(tmp_path, capsys, "alpha", "beta")
    a, b = d["alpha"], d["beta"]
    ok(
        capsys, "peer", "add", tmp_path / "alpha.json", "--dir", b
    )  # beta knows alpha; alpha never pinned beta
    draft = tmp_path / "draft.json"
    propose = ["--id", "ab", "--requester", "beta", "--purpose", "research", "--mni", "x"]
    ok(
        capsys,
        "contract",
        "propose",
        "--dir",
        a,
        *propose,
        "--resource",
        "records",
        "--scope",
        "r:read",
        "--out",
        draft,
    )
    ok(capsys, "contract", "sign", draft, "--dir", a, "-o", tmp_path / "one.json")
    ok(capsys, "contract", "sign", tmp_path / "one.json", "--dir", b, "-o", tmp_path / "two.json")
    code, _, err = accord(capsys, "contract", "register", tmp_path / "two.json", "--dir", a)
    one_line_error(code, err, "UNKNOWN_PEER")
    assert "did:web:beta.accord.test is not a pinned peer" in err and "did:key" not in err


def test_peer_add_witness_and_peer_remove(tmp_path, capsys):
    d = _pair(tmp_path, capsys, "alpha", "beta", "gamma", "tester")
    a = d["alpha"]
    ok(capsys, "peer", "add", tmp_path / "beta.json", "--dir", a, "--witness")
    ok(capsys, "peer", "add", tmp_path / "gamma.json", "--dir", a, "--witness")
    ok(capsys, "peer", "add", tmp_path / "tester.json", "--dir", a)  # pinned, not a witness
    cfg = tomllib.loads((a / "node.toml").read_text())
    assert cfg["witnesses"] == ["beta", "gamma"] and cfg["witness_quorum"] == 1
    out = ok(capsys, "peer", "remove", "beta", "--dir", a)
    assert "removed peer beta" in out
    assert not (a / "peers" / "beta.json").exists()
    assert tomllib.loads((a / "node.toml").read_text())["witnesses"] == ["gamma"]
    names = [p["org"] for p in json.loads(ok(capsys, "peer", "list", "--dir", a, "--json"))]
    assert names == ["gamma", "tester"]
    # removing the last witness would leave the quorum unreachable: refused, nothing changed
    code, _, err = accord(capsys, "peer", "remove", "gamma", "--dir", a)
    one_line_error(code, err, "CONFIG_INVALID")
    assert "witness_quorum" in err and (a / "peers" / "gamma.json").exists()
    code, _, err = accord(capsys, "peer", "remove", "nobody", "--dir", a)
    one_line_error(code, err, "UNKNOWN_PEER")
    ok(capsys, "peer", "remove", "tester", "--dir", a)


def test_pinning_a_tester_never_changes_the_witness_policy(tmp_path, capsys):
    """The walkthrough: pinning the conformance tester made the quorum min(2, peers) unreachable."""
    from federation.config import load_config
    from federation.peers import PeerRegistry
    from federation.witnessing import quorum_problem, witness_policy_for

    d = _pair(tmp_path, capsys, "alpha", "beta", "tester")
    a = d["alpha"]
    ok(capsys, "peer", "add", tmp_path / "beta.json", "--dir", a, "--witness")
    ok(capsys, "peer", "add", tmp_path / "tester.json", "--dir", a)
    node = SimpleNamespace(
        config=load_config(a), peers=PeerRegistry.load(a / "peers"), ledger_signer=SimpleNamespace(vkey="")
    )
    node.ledger_signer.vkey = _log_vkey(a)
    policy = witness_policy_for(node)
    assert policy is not None and sorted(policy.witnesses) == ["beta"]
    assert quorum_problem(node) is None
    assert "beta: last attempt failed" in quorum_problem(node, {"beta"})


def _log_vkey(directory) -> str:
    from federation.identity import NodeIdentity

    ident = NodeIdentity.load(directory)
    return ident.ledger_signer().vkey


def test_witness_quorum_above_the_witnesses_is_refused(node, capsys):
    cfg = node / "node.toml"
    cfg.write_text(cfg.read_text().replace("witness_quorum = 1", "witness_quorum = 2"))
    cfg.write_text(cfg.read_text().replace("witnesses = []", 'witnesses = ["beta"]'))
    code, _, err = accord(capsys, "peer", "list", "--dir", node)
    one_line_error(code, err, "CONFIG_INVALID")
    assert "witness_quorum 2 is more than the 1 witness(es)" in err


def test_ledger_status_says_why_nothing_is_witnessed(node, capsys):
    cfg = node / "node.toml"
    cfg.write_text(cfg.read_text().replace("witnesses = []", 'witnesses = ["beta"]'))
    doc = json.loads(ok(capsys, "ledger", "status", "--dir", node, "--json"))
    w = doc["witnessing"]
    assert w["witnesses"] == ["beta"] and w["quorum"] == 1
    assert "beta: not a pinned peer" in w["problem"]
    assert w["per_witness"]["beta"]["failing"] is True
    text = ok(capsys, "ledger", "status", "--dir", node)
    assert (
        "witnesses    beta (quorum 1)" in text
        and "beta: never cosigned; last error: not a pinned peer" in text
    )


def test_init_force_never_orphans_a_ledger(node, capsys):
    from nodes.test_lifecycle import append_entries

    ok(capsys, "node", "init", "--org", "alpha", "--dir", node, "--force")  # no ledger yet: allowed
    append_entries(node, 2)
    key = (node / "keys" / "org.jwk").read_bytes()
    code, _, err = accord(capsys, "node", "init", "--org", "alpha", "--dir", node, "--force")
    one_line_error(code, err, "LEDGER_EXISTS")
    assert "2 entries" in err and (node / "keys" / "org.jwk").read_bytes() == key
    assert ok(capsys, "ledger", "verify", "--dir", node).startswith("ledger verify: ok: 2 entries")


def test_usage_errors_are_one_line_with_exit_2(capsys):
    code, _, err = accord(capsys, "agent", "register", "--dir", "/nonexistent")
    assert code == 2 and err == "accord: error: USAGE: Missing option '--name'. (see --help)\n"
    code, _, err = accord(capsys, "no-such-noun")
    assert code == 2 and err.count("\n") == 1 and "No such command 'no-such-noun'" in err
