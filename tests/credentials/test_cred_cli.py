"""``accord credential`` CLI (federation/cli/credential.py) driven through Typer's runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from credentials import Ed25519KeyPair, did_web_document
from federation.cli.credential import app
from tests.credentials.cred_support import NOW, ORG_DID, VERIFIER_DID

runner = CliRunner()
NOW_ARG = ["--now", NOW.isoformat()]


@pytest.fixture()
def files(tmp_path, org_key, agent_key):
    org_jwk = tmp_path / "org.jwk"
    org_jwk.write_text(json.dumps(org_key.to_jwk(include_private=True)))
    agent_jwk = tmp_path / "agent.jwk"
    agent_jwk.write_text(json.dumps(agent_key.to_jwk(include_private=True)))
    did_doc = tmp_path / "org-did.json"
    did_doc.write_text(json.dumps(did_web_document(ORG_DID, org_key.public_key)))
    return {"org": org_jwk, "agent": agent_jwk, "did_doc": did_doc}


def _run(args, stdin=""):
    return runner.invoke(app, args, input=stdin)


@pytest.mark.parametrize("suite", ["eddsa-rdfc-2022", "eddsa-jcs-2022"])
def test_issue_verify_present_round_trip(suite, files, unsigned_agent_credential):
    issued = _run(
        [
            "issue",
            "--key",
            str(files["org"]),
            "--suite",
            suite,
            "--verification-method",
            ORG_DID + "#key-1",
        ],
        json.dumps(unsigned_agent_credential),
    )
    assert issued.exit_code == 0, issued.output
    signed = json.loads(issued.stdout)
    assert signed["proof"]["cryptosuite"] == suite

    ok = _run(["verify", "--json", "--did-document", str(files["did_doc"]), *NOW_ARG], issued.stdout)
    assert ok.exit_code == 0 and json.loads(ok.stdout) == {"verified": True, "errors": []}

    vp = _run(
        [
            "present",
            "--key",
            str(files["agent"]),
            "--challenge",
            "n-1",
            "--domain",
            VERIFIER_DID,
            "--suite",
            suite,
        ],
        issued.stdout,
    )
    assert vp.exit_code == 0, vp.output
    checked = _run(
        [
            "verify-presentation",
            "--challenge",
            "n-1",
            "--domain",
            VERIFIER_DID,
            "--did-document",
            str(files["did_doc"]),
            *NOW_ARG,
        ],
        vp.stdout,
    )
    assert checked.exit_code == 0, checked.output
    assert "1 credential" in checked.stdout

    replay = _run(
        [
            "verify-presentation",
            "--challenge",
            "n-2",
            "--domain",
            VERIFIER_DID,
            "--did-document",
            str(files["did_doc"]),
            "--json",
            *NOW_ARG,
        ],
        vp.stdout,
    )
    assert replay.exit_code == 1
    assert json.loads(replay.stdout)["errors"][0]["reason"] == "WRONG_CHALLENGE"


def test_verify_tampered_and_unknown_key(files, unsigned_agent_credential):
    issued = _run(
        ["issue", "--key", str(files["org"]), "--verification-method", ORG_DID + "#key-1"],
        json.dumps(unsigned_agent_credential),
    )
    signed = json.loads(issued.stdout)
    signed["credentialSubject"]["trustTier"] = 4
    bad = _run(["verify", "--did-document", str(files["did_doc"]), *NOW_ARG], json.dumps(signed))
    assert bad.exit_code == 1
    assert bad.stderr.strip().startswith("error: INVALID_SIGNATURE")
    assert len(bad.stderr.strip().splitlines()) == 1
    unknown = _run(["verify", "--json", *NOW_ARG], issued.stdout)  # no pinned did:web document
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout)["errors"][0]["reason"] == "UNKNOWN_KEY"


def test_default_did_key_issuer_and_keygen(tmp_path, agent_did):
    generated = _run(["keygen"])
    jwk = json.loads(generated.stdout)
    key = Ed25519KeyPair.from_jwk(jwk)
    did = jwk["kid"].split("#")[0]
    (tmp_path / "k.jwk").write_text(generated.stdout)
    unsigned = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "issuer": did,
        "credentialSubject": {"id": agent_did},
    }
    issued = _run(["issue", "--key", str(tmp_path / "k.jwk")], json.dumps(unsigned))
    assert issued.exit_code == 0, issued.output
    assert json.loads(issued.stdout)["proof"]["verificationMethod"].startswith(did)
    assert key.public_key_multibase in did
    assert _run(["verify"], issued.stdout).exit_code == 0


@pytest.mark.parametrize(
    ("args", "stdin", "code"),
    [
        (["verify"], "not json", 1),
        (["verify"], "[" * 50_000, 1),
        (["issue", "--key", "/nonexistent.jwk"], "{}", 2),
        (["issue", "--key", "KEY", "--suite", "rsa"], "{}", 2),
        (["verify", "--now", "yesterday"], "{}", 2),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, stdin, code, files):
    args = [str(files["org"]) if a == "KEY" else a for a in args]
    result = _run(args, stdin)
    assert result.exit_code == code
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_did_document_command(files, org_key):
    result = _run(["did-document", "--key", str(files["org"]), "--did", ORG_DID])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == did_web_document(ORG_DID, org_key.public_key)
    assert '"d"' not in result.stdout  # no private key material
    bad = _run(["did-document", "--key", str(files["org"]), "--did", "https://x"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: UNKNOWN_KEY")
