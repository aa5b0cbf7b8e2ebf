"""Who may see and do what: loopback vs mTLS off loopback, roles, CSRF, forged sessions, bad input."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request

import pytest

from tests.console.conftest import accord, accord_json

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console")]


def get(url: str, *, headers: dict | None = None, context=None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def post(url: str, data: str, *, cookie: str = "", origin: str | None = None) -> tuple[int, str]:
    headers = {"content-type": "application/x-www-form-urlencoded", "cookie": cookie}
    if origin:
        headers["origin"] = origin
    req = urllib.request.Request(url, data=data.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def session_and_csrf(base: str) -> tuple[str, str]:
    status, body, headers = get(base + "/agents")
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    csrf = body.split('name="csrf" value="')[1].split('"')[0]
    return cookie, csrf


def assert_error_page(status: int, body: str, expected: int, reason: str) -> None:
    assert status == expected, body[:500]
    assert f"Error {expected}" in body and reason in body
    assert "Traceback" not in body and 'File "' not in body


@pytest.mark.parametrize(
    "path, expected, reason",
    [
        ("/ledger/999999", 404, "UNKNOWN_ENTRY"),
        ("/ledger/99999999999999999999999999", 404, "UNKNOWN_ENTRY"),
        ("/ledger/-1", 404, "NOT_FOUND"),
        ("/ledger?decision=maybe", 400, "BAD_FILTER"),
        ("/ledger?since=yesterday", 400, "BAD_FILTER"),
        ("/ledger?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", 400, "BAD_FILTER"),
        ("/ledger?before=abc", 400, "BAD_FILTER"),
        ("/ledger?kind=disclosure&kind=denial", 400, "BAD_FILTER"),
        ("/ledger?drop=table", 400, "BAD_FILTER"),
        ("/ledger?purpose=" + "x" * 300, 400, "BAD_FILTER"),
        ("/ledger?purpose=" + "x" * 3000, 414, "BAD_REQUEST"),
        ("/no/such/page", 404, "NOT_FOUND"),
    ],
)
def test_bad_input_gets_a_clear_error_page(read_console, path, expected, reason):
    status, body, headers = get(read_console.url + path)
    assert_error_page(status, body, expected, reason)
    assert headers["content-type"].startswith("text/html")


def test_forged_session_cookie_is_refused_and_cleared(read_console):
    cookie, _ = session_and_csrf(read_console.url)
    name, value = cookie.split("=", 1)
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    status, body, headers = get(read_console.url + "/", headers={"cookie": f"{name}={forged}"})
    assert_error_page(status, body, 403, "FORGED_SESSION")
    assert 'accord_console=""' in headers.get("set-cookie", "") or "Max-Age=0" in headers.get(
        "set-cookie", ""
    )
    # a cookie signed by another console process (another secret) is forged too
    status, body, _ = get(read_console.url + "/", headers={"cookie": f"{name}=eyJjc3JmIjoieCJ9.ZZZZZZ.abc"})
    assert_error_page(status, body, 403, "FORGED_SESSION")


def test_write_without_write_role_is_refused(read_console, demo_dirs):
    d = demo_dirs["hospital"]
    before = {a["name"]: a["status"] for a in accord_json("agent", "list", "--dir", str(d))}
    name = next(n for n, s in before.items() if s == "active")
    size = accord_json("ledger", "status", "--dir", str(d))["sequenced"]
    cookie, csrf = session_and_csrf(read_console.url)
    status, body = post(f"{read_console.url}/agents/{name}/revoke", f"csrf={csrf}", cookie=cookie)
    assert_error_page(status, body, 403, "WRITE_ROLE_REQUIRED")
    contract = accord_json("contract", "list", "--dir", str(d))[0]["id"]
    status, body = post(f"{read_console.url}/contracts/{contract}/retire", f"csrf={csrf}", cookie=cookie)
    assert_error_page(status, body, 403, "WRITE_ROLE_REQUIRED")
    after = {a["name"]: a["status"] for a in accord_json("agent", "list", "--dir", str(d))}
    assert after == before
    assert accord_json("ledger", "status", "--dir", str(d))["sequenced"] == size


def test_write_action_needs_csrf_and_is_ledgered(write_console, demo_dirs, page):
    d = demo_dirs["relief"]
    agents = accord_json("agent", "list", "--dir", str(d))
    target = next(a for a in agents if a["status"] == "active")
    cookie, csrf = session_and_csrf(write_console.url)
    # no token, a wrong token, a cross-origin post: refused, nothing changes
    for data, origin in (("", None), ("csrf=nope", None), (f"csrf={csrf}", "http://evil.example")):
        status, body = post(
            f"{write_console.url}/agents/{target['name']}/suspend", data, cookie=cookie, origin=origin
        )
        assert_error_page(status, body, 403, "CSRF")
    assert {a["name"]: a["status"] for a in accord_json("agent", "list", "--dir", str(d))}[
        target["name"]
    ] == "active"
    # through the browser: the form carries the token
    page.goto(write_console.url + "/agents")
    assert page.locator("p.who").get_attribute("data-role") == "write"
    page.click(f"tr[data-agent='{target['name']}'] button[aria-label='suspend {target['name']}']")
    page.wait_for_selector("#done-entry")
    index = int(page.locator("#done-entry").text_content())
    status = {a["name"]: a["status"] for a in accord_json("agent", "list", "--dir", str(d))}
    assert status[target["name"]] == "suspended"
    ops = accord_json("ledger", "query", "--dir", str(d), "--kind", "operator_action")
    entry = next(r for r in ops if r["index"] == index)
    assert entry["extra"]["action"] == "agent.suspend"
    assert entry["extra"]["target"] == target["name"]
    assert entry["extra"]["actor"] == "loopback"
    assert entry["requester_agent"] == target["did"]
    # the entry itself verifies in the browser once checkpointed
    page.goto(f"{write_console.url}/ledger/{index}")
    page.locator("#verdict[data-verdict]").wait_for()
    assert page.locator("#verdict").get_attribute("data-verdict") in ("verified", "pending")
    assert accord("ledger", "verify", "--dir", str(d)).returncode == 0
    # reinstate puts it back (also ledgered)
    page.goto(write_console.url + "/agents")
    page.click(f"tr[data-agent='{target['name']}'] button[aria-label='reinstate {target['name']}']")
    page.wait_for_selector("#done-entry")
    assert {a["name"]: a["status"] for a in accord_json("agent", "list", "--dir", str(d))}[
        target["name"]
    ] == "active"


def _tls_context(cert=None, key=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def test_off_loopback_needs_tls_and_an_operator_certificate(tls_console, demo_dirs, tmp_path, browser):
    d = demo_dirs["supplier"]
    base = tls_console.url
    # 1. plain HTTP to the off-loopback listener: no HTTP answer
    with socket.create_connection(("127.0.0.1", tls_console.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(100)
        except (ConnectionResetError, TimeoutError):
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200")
    # 2. TLS without a client certificate: the handshake refuses (no HTTP response at all)
    with pytest.raises((ssl.SSLError, ConnectionResetError, urllib.error.URLError)):
        get(base + "/", context=_tls_context())
    # 3. a certificate from the node's CA that is not an operator's (the node's own): 403
    tls = d / "tls"
    status, body, _ = get(base + "/", context=_tls_context(tls / "node.pem", tls / "node.key"))
    assert_error_page(status, body, 403, "NOT_OPERATOR")
    # 4. a certificate from another organization's CA: refused in the handshake
    other = demo_dirs["hospital"] / "tls"
    with pytest.raises((ssl.SSLError, ConnectionResetError, urllib.error.URLError)):
        get(base + "/", context=_tls_context(other / "operator.pem", other / "operator.key"))
    # 5. a read-role console certificate: pages yes, writes no
    p = accord(
        "console", "issue-cert", "--dir", str(d), "--name", "alice", "--role", "read", "--out", str(tmp_path)
    )
    assert p.returncode == 0, p.stderr
    ctx = _tls_context(tmp_path / "alice.pem", tmp_path / "alice.key")
    status, body, headers = get(base + "/agents", context=ctx)
    assert status == 200 and 'data-role="read"' in body and "#console-read:alice" in body
    assert "Secure" in headers["set-cookie"]
    # 6. the operator certificate in the browser: write role
    context = browser.new_context(
        ignore_https_errors=True,
        client_certificates=[
            {"origin": base, "certPath": str(tls / "operator.pem"), "keyPath": str(tls / "operator.key")}
        ],
    )
    try:
        pg = context.new_page()
        pg.goto(base + "/agents")
        assert pg.locator("p.who").get_attribute("data-role") == "write"
        assert "#operator" in pg.locator("p.who").text_content()
    finally:
        context.close()


def test_read_certificate_cannot_write_over_tls(tls_console, demo_dirs, tmp_path):
    d = demo_dirs["supplier"]
    p = accord(
        "console", "issue-cert", "--dir", str(d), "--name", "bob", "--role", "read", "--out", str(tmp_path)
    )
    assert p.returncode == 0, p.stderr
    ctx = _tls_context(tmp_path / "bob.pem", tmp_path / "bob.key")
    status, body, headers = get(tls_console.url + "/agents", context=ctx)
    cookie = headers["set-cookie"].split(";")[0]
    csrf = body.split('name="csrf" value="')[1].split('"')[0]
    name = accord_json("agent", "list", "--dir", str(d))[0]["name"]
    req = urllib.request.Request(
        f"{tls_console.url}/agents/{name}/revoke",
        data=f"csrf={csrf}".encode(),
        method="POST",
        headers={"cookie": cookie, "content-type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30, context=ctx)
    assert err.value.code == 403 and "WRITE_ROLE_REQUIRED" in err.value.read().decode()
    assert accord_json("agent", "list", "--dir", str(d))[0]["status"] != "revoked"


def test_approval_decided_in_the_console_is_signed_and_ledgered(demo_dirs, browser, tmp_path):
    """A held request (a real queue row) approved through the browser with the console's approver key."""
    import datetime as dt
    from types import SimpleNamespace

    from federation.agents import open_store
    from federation.approvals import ApprovalError, ApprovalQueue, Assessment
    from federation.identity import NodeIdentity
    from policy.contract import ApprovalPolicy, ApprovalRule
    from tests.console.conftest import ConsoleProcess

    d = demo_dirs["relief"]
    key = tmp_path / "op.pem"
    p = accord("approvals", "operator-keygen", "--out", str(key))
    assert p.returncode == 0, p.stderr
    public = p.stdout.strip().split()[-1]
    assert (
        accord("approvals", "operator-add", "dana", "--public-key", public, "--dir", str(d)).returncode == 0
    )
    ident = NodeIdentity.load(d)
    queue = ApprovalQueue(open_store(ident), org_did=ident.org_did)
    contract = SimpleNamespace(
        id="relief-hospital-triage",
        version_hash="ab" * 32,
        approval=ApprovalPolicy(require=ApprovalRule(fields=["allergies"])),
    )
    with pytest.raises(ApprovalError) as held:
        queue.hold(
            shape="console-test-shape",
            contract=contract,
            requester_org="did:web:hospital.accord.test",
            agent="did:key:z6MkTest",
            purpose="triage-coordination",
            resource="patients",
            subject="p-1",
            fields=["allergies", "patient_id"],
            assessment=Assessment(rule="fields:allergies", risk=0.8, reason="releases allergies beyond MNI"),
            now=dt.datetime.now(dt.UTC),
        )
    approval_id = held.value.metadata["approval_id"]
    c = ConsoleProcess(d, "--write", "--approver", "dana", "--approver-key", str(key))
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        pg.goto(c.url + "/approvals")
        assert pg.locator("#approver").text_content() == "dana"
        row = pg.locator(f"tr[data-approval='{approval_id}']")
        assert "releases allergies beyond MNI" in row.text_content()
        row.locator(f"button[aria-label='approve {approval_id}']").click()
        pg.wait_for_selector("#done-entry")
        index = int(pg.locator("#done-entry").text_content())
        ctx.close()
    finally:
        c.stop()
    row = queue.show(approval_id)
    assert row["status"] == "approved" and row["decided_by"] == "dana" and row["signed"]
    queue.verify_decision(queue.rows.get(approval_id))  # the signature is the registered operator's
    ops = accord_json("ledger", "query", "--dir", str(d), "--kind", "operator_action")
    entry = next(r for r in ops if r["index"] == index)
    assert entry["extra"]["action"] == "approval.approve" and entry["extra"]["target"] == approval_id
