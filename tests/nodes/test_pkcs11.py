"""The organization key in an HSM through PKCS#11, with a real SoftHSM2 token (issue #11).

SoftHSM2 (Debian's ``softhsm2``) runs in a temporary directory
(``SOFTHSM2_CONF``); tokens are initialized with ``softhsm2-util``.
``node init --key-store pkcs11`` generates the key pair in the token: no key
file is written, the private key is sensitive and not extractable, and every
signature is made in the token. On real node processes a file key is moved
into a token by ``node rotate-key --key-store pkcs11``; the node then signs
envelopes and new agents' credentials in the token and a peer accepts them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.identity import NodeIdentity, export_bundle
from federation.peers import PeerBundle

pytestmark = pytest.mark.xdist_group("federation")

PIN_ENV = "ACCORD_TEST_HSM_PIN"
PIN = "314159"
TOKENS = ("init", "node", "rotate", "fed", "ledger", "cards")
_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)


@pytest.fixture(scope="module")
def hsm(tmp_path_factory):
    """A SoftHSM2 configuration with one initialized token per test (created before the module is loaded)."""
    module = next((m for m in _MODULES if Path(m).is_file()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    pytest.importorskip("pkcs11")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    saved = {k: os.environ.get(k) for k in ("SOFTHSM2_CONF", PIN_ENV)}
    os.environ["SOFTHSM2_CONF"] = str(conf)
    os.environ[PIN_ENV] = PIN
    for label in TOKENS:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "271828"],
            check=True,
            capture_output=True,
        )
    yield module
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _accord(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def _pkcs11_args(module, token):
    return ["--key-store", "pkcs11", "--pkcs11-module", module, "--pkcs11-token", token, "--pin-env", PIN_ENV]


def test_init_generates_the_org_key_in_the_token_and_signs_there(hsm, tmp_path):
    import pkcs11
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from federation.keystore import Pkcs11Ed25519Key

    d = tmp_path / "alpha"
    p = _accord(
        "node", "init", "--org", "alpha", "--dir", d, "--listen", "127.0.0.1:7631", *_pkcs11_args(hsm, "init")
    )
    assert p.returncode == 0, p.stderr
    keys = d / "keys"
    assert not (keys / "org.jwk").exists() and not (keys / "org.p8").exists()
    record = json.loads((keys / "pkcs11.json").read_text())
    assert record["pin_env"] == PIN_ENV and PIN not in (keys / "pkcs11.json").read_text()
    ident = NodeIdentity.load(d)
    key = ident.org_key
    assert isinstance(key, Pkcs11Ed25519Key) and key.label == record["key_label"]
    sig = key.sign(b"accord")
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(sig, b"accord")  # raises if it does not verify
    with pytest.raises(ConfigError) as ei:
        _ = key.seed
    assert ei.value.reason == "KEY_NOT_EXPORTABLE"
    # the bundle is signed in the token and verifies under the token's public key
    bundle = PeerBundle.parse(export_bundle(ident).model_dump_json())
    assert bundle.public_key == key.public_key
    # the token holds the private key as sensitive and not extractable
    tok = pkcs11.lib(str(Path(hsm).resolve())).get_token(token_label="init")
    with tok.open() as s:  # this process is logged in already (the identity's session)
        priv = s.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=record["key_label"])
        assert priv[pkcs11.Attribute.SENSITIVE] is True
        assert priv[pkcs11.Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):
            _ = priv[pkcs11.Attribute.VALUE]
    # an agent credential signed in the token verifies under the bundle key
    from credentials import StaticKeyResolver, verify_credential
    from federation.agents import register_agent

    wallet = register_agent(ident, name="bot", role="r", scopes=["x:read"])
    verify_credential(
        wallet.credential, resolve_key=StaticKeyResolver({ident.verification_method: key.public_key})
    )
    # bad input: one line, non-zero exit
    p = _accord("node", "status", "--dir", d, env={PIN_ENV: "000000"})
    assert (
        p.returncode != 0 and "KEY_STORE_UNAVAILABLE" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    )
    p = _accord("node", "status", "--dir", d, env={PIN_ENV: ""})
    assert p.returncode != 0 and "KEY_PASSPHRASE_MISSING" in p.stderr
    p = _accord(
        "node", "init", "--org", "beta", "--dir", tmp_path / "beta", *_pkcs11_args(hsm, "no-such-token")
    )
    assert p.returncode != 0 and "KEY_STORE_UNAVAILABLE" in p.stderr
    assert not (tmp_path / "beta").exists()  # nothing half-written
    p = _accord("node", "init", "--org", "beta", "--dir", tmp_path / "beta", "--key-store", "pkcs11")
    assert p.returncode != 0 and "--pkcs11-module" in p.stderr


def test_a_node_process_signs_in_the_token_and_a_peer_accepts_it(hsm, tmp_path):
    from federation.client import AgentClient
    from federation.demo.setup import provision
    from federation.supervisor import NodeProcess
    from nodes.conftest import run

    layout = provision(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    relief, hospital = layout.orgs["relief"], layout.orgs["hospital"]
    procs = {}
    try:
        for org in ("hospital", "relief"):
            procs[org] = NodeProcess(layout.orgs[org]).start()
        # move relief's organization key into the token while the nodes run
        p = _accord("node", "rotate-key", "--dir", relief, "--json", *_pkcs11_args(hsm, "node"))
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        # "unchanged": the running node's own retry loop announced it first
        assert out["peers"]["hospital"] in ("rotation", "unchanged")
        assert not (relief / "keys" / "org.jwk").exists()
        ident = NodeIdentity.load(relief)
        assert type(ident.org_key).__name__ == "Pkcs11Ed25519Key"
        pinned = PeerBundle.parse((hospital / "peers" / "relief.json").read_bytes())
        assert pinned.public_key == ident.org_key.public_key

        async def triage(wallet):
            async with AgentClient.from_wallet(wallet, endpoint=procs["relief"].endpoint) as c:
                s = await c.open_session("hospital")
                r = await c.request(
                    s,
                    contract_id="relief-hospital-triage",
                    purpose="triage-coordination",
                    resource="patients",
                    subject="patient-001",
                    fields=["patient_id", "triage_level", "mobility", "shelter"],
                )
                return r.decision, r.receipt_verified

        # the envelope is signed in the token; the agent's credential by the retired file key
        assert run(triage(layout.wallets["relief/triage-coordinator"])) == ("allow", True)
        # a new agent: its credential is signed in the token (CLI, then the running node reloads)
        p = _accord(
            "agent", "register", "--dir", relief, "--name", "medic", "--role", "triage-coordinator",
            "--scope", "patients:read", "--trust-tier", "2",
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        wallet = json.loads((relief / "agents" / "medic.json").read_text())
        assert wallet["credential"]["proof"]["verificationMethod"].endswith("#key-2")
        from federation.cli.common import nudge_running_node

        assert "reloaded" in (nudge_running_node(relief) or "")
        assert run(triage(relief / "agents" / "medic.json")) == ("allow", True)
        # rotate again, within the token
        p = _accord("node", "rotate-key", "--dir", relief, "--json")
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["peers"]["hospital"] in ("rotation", "unchanged")
        pinned = PeerBundle.parse((hospital / "peers" / "relief.json").read_bytes())
        assert pinned.fingerprint() == out["new_fingerprint"]
        assert run(triage(layout.wallets["relief/triage-coordinator"])) == ("allow", True)
    finally:
        for proc in procs.values():
            proc.stop()
    history = json.loads((relief / "keys" / "org-history.json").read_text())["keys"]
    assert [k["id"] for k in history] == ["key-1", "key-2", "key-3"]
    assert all(k["validUntil"] for k in history[:2]) and dt.datetime.fromisoformat(history[2]["validFrom"])


def _token_public_key(module: str, token: str, label: str) -> bytes:
    """The Ed25519 public key of key pair ``label``, read from the token (not through Accord)."""
    import pkcs11

    tok = pkcs11.lib(str(Path(module).resolve())).get_token(token_label=token)
    with tok.open() as s:  # this process is logged in already (an identity's session)
        pub = s.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=label)
        point = bytes(pub[pkcs11.Attribute.EC_POINT])
    return point[2:] if len(point) == 34 else point


def test_ledger_and_witness_keys_in_the_token_sign_checkpoints_a_partner_cosigns(hsm, tmp_path, monkeypatch):
    from federation.client import AgentClient
    from federation.demo import setup
    from federation.keystore import Pkcs11Config
    from federation.ledger_view import open_ledger_readonly
    from federation.supervisor import NodeProcess
    from ledger import CosignatureVerifier, NoteVerifier, key_id, open_checkpoint, open_cosignatures
    from ledger.note import SIG_COSIGNATURE_V1, SIG_ED25519
    from nodes.conftest import run

    token = Pkcs11Config(module=str(Path(hsm).resolve()), token="fed", pin_env=PIN_ENV)
    real_init = setup.init_node

    def init_in_token(d, **kw):  # relief's organization, ledger and witness keys are made in the token
        if kw["org_name"] == "relief":
            kw.update(pkcs11=token, pkcs11_keys=("org", "ledger", "witness"))
        return real_init(d, **kw)

    monkeypatch.setattr(setup, "init_node", init_in_token)
    layout = setup.provision(tmp_path / "fed", orgs=("hospital", "relief"), with_interop=False)
    relief, hospital = layout.orgs["relief"], layout.orgs["hospital"]
    keys = relief / "keys"
    # no key of relief is a file; the records name the token and the PIN's variable, not the PIN
    assert sorted(f.name for f in keys.iterdir()) == [
        "pkcs11-ledger.json",
        "pkcs11-witness.json",
        "pkcs11.json",
    ]
    records = {n: json.loads((keys / f"pkcs11{n}.json").read_text()) for n in ("", "-ledger", "-witness")}
    assert all(r["token"] == "fed" and r["pin_env"] == PIN_ENV for r in records.values())
    assert not any(PIN in (keys / f"pkcs11{n}.json").read_text() for n in records)
    ident = NodeIdentity.load(relief)
    assert ident.ledger_seed is None and ident.witness_seed is None
    with pytest.raises(Exception, match="not exportable"):
        _ = ident.ledger_signer().skey
    # the verifier keys come from the token's public keys, read without Accord
    ledger_pub = _token_public_key(hsm, "fed", records["-ledger"]["key_label"])
    witness_pub = _token_public_key(hsm, "fed", records["-witness"]["key_label"])
    origin, wname = "relief.accord.test/ledger", "relief.accord.test/witness"
    log_verifier = NoteVerifier(origin, key_id(origin, SIG_ED25519, ledger_pub), SIG_ED25519, ledger_pub)
    relief_witness = CosignatureVerifier(
        wname, key_id(wname, SIG_COSIGNATURE_V1, witness_pub), SIG_COSIGNATURE_V1, witness_pub
    )
    pinned = PeerBundle.parse((hospital / "peers" / "relief.json").read_bytes())
    assert NoteVerifier.from_vkey(pinned.ledger_vkey) == log_verifier
    assert CosignatureVerifier.from_vkey(pinned.witness_vkey) == relief_witness
    hospital_witness = CosignatureVerifier.from_vkey(
        PeerBundle.parse((relief / "peers" / "hospital.json").read_bytes()).witness_vkey
    )

    procs = {}
    try:
        for org in ("hospital", "relief"):
            procs[org] = NodeProcess(layout.orgs[org]).start()

        async def triage():
            async with AgentClient.from_wallet(
                layout.wallets["relief/triage-coordinator"], endpoint=procs["relief"].endpoint
            ) as c:
                s = await c.open_session("hospital")
                r = await c.request(
                    s,
                    contract_id="relief-hospital-triage",
                    purpose="triage-coordination",
                    resource="patients",
                    subject="patient-001",
                    fields=["patient_id", "triage_level", "mobility", "shelter"],
                )
                return r.decision, r.receipt_verified

        assert run(triage()) == ("allow", True)

        def witnessed(node_dir: Path):
            lg = open_ledger_readonly(NodeIdentity.load(node_dir))
            try:
                return lg.latest_checkpoint(witnessed=True)
            finally:
                lg.close()

        import time

        deadline = time.monotonic() + 90
        mine = theirs = None
        while time.monotonic() < deadline:
            mine, theirs = witnessed(relief), witnessed(hospital)
            if mine and mine.checkpoint.size > 0 and theirs and theirs.checkpoint.size > 0:
                break
            time.sleep(0.25)
        assert mine is not None and mine.checkpoint.size > 0, "relief's checkpoint was never witnessed"
        assert theirs is not None and theirs.checkpoint.size > 0, "hospital's checkpoint was never witnessed"
        # relief's checkpoint: signed in the token (the token's public key verifies it), cosigned by hospital
        assert open_checkpoint(mine.note, log_verifier, origin=origin).checkpoint == mine.checkpoint
        _, cosigs = open_cosignatures(mine.note, [hospital_witness])
        assert [c.name for c in cosigs] == ["hospital.accord.test/witness"]
        # hospital's checkpoint: cosigned by relief's witness key in the token
        _, cosigs = open_cosignatures(theirs.note, [relief_witness])
        assert [c.name for c in cosigs] == [wname]
        # a checkpoint signed by another key under relief's name does not verify under the token's key
        from ledger import NoteSigner

        forged = NoteSigner(origin, bytes(32)).sign(mine.note.split("\n\n")[0] + "\n")
        with pytest.raises(Exception, match="not signed by any trusted key"):
            open_checkpoint(forged, log_verifier, origin=origin)
    finally:
        for proc in procs.values():
            proc.stop()
    # a wrong PIN: the node does not start, and says why in one line (no traceback)
    p = _accord("node", "start", "--dir", relief, env={PIN_ENV: "000000"})
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "KEY_STORE_UNAVAILABLE" in p.stderr and "wrong PIN" in p.stderr
    p = _accord("ledger", "vkey", "--dir", relief, env={PIN_ENV: ""})
    assert p.returncode != 0 and "KEY_PASSPHRASE_MISSING" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_only_the_ledger_key_in_the_token(hsm, tmp_path):
    """``--pkcs11-keys ledger``: only the ledger key is in the token; a lost token stops the node."""
    d = tmp_path / "gamma"
    p = _accord(
        "node", "init", "--org", "gamma", "--dir", d, "--listen", "127.0.0.1:7632",
        *_pkcs11_args(hsm, "ledger"), "--pkcs11-keys", "ledger",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    keys = d / "keys"
    assert sorted(f.name for f in keys.iterdir()) == ["org.jwk", "pkcs11-ledger.json", "witness.seed"]
    record = json.loads((keys / "pkcs11-ledger.json").read_text())
    p = _accord("ledger", "vkey", "--dir", d)
    assert p.returncode == 0, p.stderr
    from ledger import NoteVerifier

    v = NoteVerifier.from_vkey(p.stdout.strip())
    assert v.public_key == _token_public_key(hsm, "ledger", record["key_label"])
    p = _accord("node", "status", "--dir", d, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["key_store"] == (
        f"org: file, ledger: pkcs11 token ledger key {record['key_label']}, witness: file"
    )
    # the org key is a file: commands that do not sign checkpoints need no PIN
    p = _accord("peer", "list", "--dir", d, env={PIN_ENV: ""})
    assert p.returncode == 0, p.stderr
    # the token is gone: `ledger vkey` and `node start` fail in one line
    (keys / "pkcs11-ledger.json").write_text(json.dumps({**record, "token": "no-such-token"}))
    p = _accord("ledger", "vkey", "--dir", d)
    assert p.returncode != 0 and "KEY_STORE_UNAVAILABLE" in p.stderr and "token not found" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = _accord("node", "start", "--dir", d)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "KEY_STORE_UNAVAILABLE" in p.stderr
    # bad option values: one line, nothing written
    for bad in (["--pkcs11-keys", "ledger,nope"], ["--pkcs11-keys", ""]):
        p = _accord(
            "node", "init", "--org", "delta", "--dir", tmp_path / "delta", *_pkcs11_args(hsm, "ledger"), *bad
        )
        assert p.returncode != 0 and "--pkcs11-keys" in p.stderr
    p = _accord("node", "init", "--org", "delta", "--dir", tmp_path / "delta", "--pkcs11-keys", "ledger")
    assert p.returncode != 0 and "--key-store pkcs11" in p.stderr
    assert not (tmp_path / "delta").exists()


def test_encrypted_files_and_a_token_key_together(hsm, tmp_path, monkeypatch):
    """``--encrypt-keys`` and ``--pkcs11-keys witness``: org, ledger encrypted; the witness in the token."""
    from federation.identity import KeyPassphrase, init_node
    from federation.keystore import Pkcs11Config

    monkeypatch.setenv("ACCORD_TEST_KEY_PASSPHRASE", "correct horse")
    d = tmp_path / "eps"
    init_node(
        d,
        org_name="eps",
        listen="127.0.0.1:7633",
        passphrase=KeyPassphrase(env="ACCORD_TEST_KEY_PASSPHRASE"),
        pkcs11=Pkcs11Config(module=hsm, token="ledger", pin_env=PIN_ENV),
        pkcs11_keys=("witness",),
    )
    keys = d / "keys"
    assert sorted(f.name for f in keys.iterdir()) == [
        "encryption.json", "ledger.p8", "org.p8", "pkcs11-witness.json",
    ]  # fmt: skip
    ident = NodeIdentity.load(d)
    assert ident.ledger_seed is not None and ident.witness_seed is None
    record = json.loads((keys / "pkcs11-witness.json").read_text())
    assert ident.witness_signer().public_key == _token_public_key(hsm, "ledger", record["key_label"])
    assert ident.key_locations() == {
        "org": "file (encrypted)",
        "ledger": "file (encrypted)",
        "witness": f"pkcs11 token ledger key {record['key_label']}",
    }
    monkeypatch.setenv("ACCORD_TEST_KEY_PASSPHRASE", "wrong")
    with pytest.raises(ConfigError) as ei:
        NodeIdentity.load(d)
    assert ei.value.reason == "KEY_DECRYPT_FAILED"


def _labels(module: str, token: str) -> set[str]:
    """The labels of every key object in the token (read without Accord)."""
    import pkcs11

    tok = pkcs11.lib(str(Path(module).resolve())).get_token(token_label=token)
    try:
        session = tok.open(user_pin=PIN)
    except pkcs11.UserAlreadyLoggedIn:  # a key this process holds is open on the token
        session = tok.open()
    with session as s:
        return {o[pkcs11.Attribute.LABEL] for o in s.get_objects({pkcs11.Attribute.TOKEN: True})}


def test_init_that_fails_midway_leaves_no_key_pair_in_the_token(hsm, tmp_path, monkeypatch):
    """The token refuses the third key pair: the two made before are deleted and no directory is written."""
    import pkcs11

    from federation import keystore
    from federation.identity import init_node

    real = keystore.generate_pkcs11_key

    def refuse_the_witness(cfg, *, label_prefix, role="org"):  # the token fails on the third key (simulated)
        if role == "witness":
            raise keystore._unavailable(cfg, "cannot generate an Ed25519 key pair", pkcs11.DeviceMemory())
        return real(cfg, label_prefix=label_prefix, role=role)

    monkeypatch.setattr(keystore, "generate_pkcs11_key", refuse_the_witness)
    before = _labels(hsm, "rotate")
    with pytest.raises(ConfigError) as ei:
        init_node(
            tmp_path / "zeta",
            org_name="zeta",
            listen="127.0.0.1:7634",
            pkcs11=keystore.Pkcs11Config(module=hsm, token="rotate", pin_env=PIN_ENV),
            pkcs11_keys=("org", "ledger", "witness"),
        )
    assert ei.value.reason == "KEY_STORE_UNAVAILABLE" and "DeviceMemory" in str(ei.value)
    assert not (tmp_path / "zeta").exists()
    assert _labels(hsm, "rotate") == before and not any(lab.startswith("accord-zeta") for lab in before)


def test_an_a2a_agent_card_is_signed_by_the_organization_key_in_the_token(hsm):
    """The a2a-sdk signs cards through PyJWT with a private-key object: a token key signs them too."""
    from federation.a2a.cards import SkillTerms, build_card, card_json, parse_card, sign_card, verify_card
    from federation.a2a.config import ExposedAgent
    from federation.keystore import Pkcs11Config, generate_pkcs11_key

    key = generate_pkcs11_key(Pkcs11Config(module=hsm, token="cards", pin_env=PIN_ENV), label_prefix="org")
    with pytest.raises(Exception, match="KEY_NOT_EXPORTABLE|cannot be exported"):
        key.seed  # noqa: B018
    org = "did:web:alpha.accord.test"
    terms = {"triage": [SkillTerms("triage", "c1", ("patients",), ("patient_id", "triage_level"))]}
    exposed = ExposedAgent(agent="desk", skills=["triage"])
    card = build_card(exposed, org_name="alpha", org_did=org, terms=terms, url="accord:x")
    sign_card(card, key=key, kid=f"{org}#key-1")
    parsed = parse_card(card_json(card))
    assert verify_card(parsed, pinned={f"{org}#key-1": (org, key.public_key)}) == org
