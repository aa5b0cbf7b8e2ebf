"""Node signing keys encrypted at rest (issue #11, "Private keys at rest").

``node init --encrypt-keys --passphrase-env VAR | --passphrase-file F`` writes
the organization, ledger and witness keys as encrypted PKCS#8 (RFC 5958);
every later command, ``node start`` included, needs the passphrase and
refuses in one line, naming the variable or file, without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from federation.supervisor import NodeProcess, free_port
from nodes.test_cli_walkthrough import accord, ok, one_line_error

pytestmark = pytest.mark.xdist_group("cli")

VAR = "ACCORD_TEST_KEY_PASSPHRASE_7f3a"
PASSPHRASE = "correct horse battery staple 7f3a"
KEY_FILES = ("org.p8", "ledger.p8", "witness.p8")


def _accord_proc(*args, env: dict[str, str]):
    import os

    full = {k: v for k, v in os.environ.items() if k != VAR} | env
    return subprocess.run(
        [sys.executable, "-m", "federation.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
    )


def _assert_encrypted(d: Path, passphrase: bytes) -> None:
    keys = d / "keys"
    assert not any((keys / n).exists() for n in ("org.jwk", "ledger.seed", "witness.seed"))
    for name in KEY_FILES:
        data = (keys / name).read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # not loadable without a password: not a plain PKCS#8 key
            load_pem_private_key(data, password=None)
        load_pem_private_key(data, password=passphrase)
        assert (keys / name).stat().st_mode & 0o077 == 0
    for f in keys.iterdir():
        assert passphrase not in f.read_bytes()


def test_init_encrypted_with_env_then_start_needs_the_passphrase(tmp_path):
    d = tmp_path / "alpha"
    env = {VAR: PASSPHRASE}
    p = _accord_proc(
        "node", "init", "--org", "alpha", "--dir", d, "--listen", f"127.0.0.1:{free_port()}",
        "--encrypt-keys", "--passphrase-env", VAR, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    _assert_encrypted(d, PASSPHRASE.encode())
    assert json.loads((d / "keys" / "encryption.json").read_text()) == {"passphrase_env": VAR}

    # without the variable: refused in one line naming it
    p = _accord_proc("agent", "list", "--dir", d, env={})
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "KEY_PASSPHRASE_MISSING" in p.stderr and VAR in p.stderr
    # a wrong passphrase: refused in one line naming the key file and the variable
    p = _accord_proc("agent", "list", "--dir", d, env={VAR: "wrong"})
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "KEY_DECRYPT_FAILED" in p.stderr and "org.p8" in p.stderr and VAR in p.stderr

    # the node process refuses to start without it ...
    with pytest.raises(RuntimeError) as exc:
        NodeProcess(d, env={VAR: ""}).start()
    assert "KEY_PASSPHRASE_MISSING" in str(exc.value)
    # ... and starts with it, signing with the decrypted keys
    node = NodeProcess(d, env=env).start()
    try:
        p = _accord_proc(
            "agent", "register", "--dir", d, "--name", "bot", "--role", "r", "--scope", "x:read", env=env
        )
        assert p.returncode == 0, p.stderr
        assert "running node reloaded" in p.stdout
        p = _accord_proc("ledger", "verify", "--dir", d, env=env)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        node.stop()


def test_init_encrypted_with_a_passphrase_file(tmp_path, capsys):
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\n")
    d = tmp_path / "beta"
    ok(capsys, "node", "init", "--org", "beta", "--dir", d, "--encrypt-keys", "--passphrase-file", secret)
    _assert_encrypted(d, PASSPHRASE.encode())
    ok(capsys, "agent", "register", "--dir", d, "--name", "bot", "--role", "r", "--scope", "x:read")
    secret.write_text("not it\n")
    code, _, err = accord(capsys, "agent", "list", "--dir", d)
    one_line_error(code, err, "KEY_DECRYPT_FAILED")
    secret.unlink()
    code, _, err = accord(capsys, "agent", "list", "--dir", d)
    one_line_error(code, err, "KEY_PASSPHRASE_MISSING")
    assert str(secret) in err


def test_init_option_errors_write_nothing(tmp_path, capsys):
    d = tmp_path / "gamma"
    code, _, err = accord(capsys, "node", "init", "--org", "gamma", "--dir", d, "--encrypt-keys")
    assert code == 2 and err.count("\n") == 1 and "--passphrase-env" in err, err
    code, _, err = accord(capsys, "node", "init", "--org", "gamma", "--dir", d, "--passphrase-env", VAR)
    assert code == 2 and "--encrypt-keys" in err, err
    code, _, err = accord(
        capsys, "node", "init", "--org", "gamma", "--dir", d, "--encrypt-keys", "--passphrase-env", VAR
    )
    one_line_error(code, err, "KEY_PASSPHRASE_MISSING")
    assert VAR in err
    assert not d.exists()
