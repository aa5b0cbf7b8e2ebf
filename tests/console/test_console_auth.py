"""The console's authentication rules and filter parsing, without a server."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from federation.console.auth import (
    ConsoleAuthError,
    SessionCodec,
    check_csrf,
    principal_for,
    principal_from_cert,
    role_for_san,
)
from federation.console.views import FilterError, LedgerFilterForm
from federation.tls import issue_client_certificate, mint_tls_material

DID = "did:web:hospital.accord.test"


@pytest.mark.parametrize(
    "san, role",
    [
        (DID + "#operator", "write"),
        (DID + "#console-write:alice", "write"),
        (DID + "#console-read:bob", "read"),
    ],
)
def test_roles_from_the_san_uri(san, role):
    assert role_for_san(san, DID) == role


@pytest.mark.parametrize(
    "san",
    [
        DID,  # the node's own certificate
        DID + "#console-read:",  # no name
        DID + "#console-admin:x",
        "did:web:relief.accord.test#operator",  # another organization's operator
        DID + "#operator-ish",
        DID + "#console-write:" + "x" * 65,
    ],
)
def test_other_sans_get_no_role(san):
    with pytest.raises(ConsoleAuthError) as err:
        role_for_san(san, DID)
    assert err.value.status == 403 and err.value.reason == "NOT_OPERATOR"


def test_plain_http_off_loopback_is_refused_even_with_a_write_loopback_role():
    with pytest.raises(ConsoleAuthError) as err:
        principal_for({"client": ("10.1.2.3", 5555)}, org_did=DID, loopback_role="write")
    assert err.value.status == 401 and err.value.reason == "TLS_REQUIRED"
    # a forwarded-for header never counts: only the connection
    scope = {"client": ("10.1.2.3", 5555), "headers": [(b"x-forwarded-for", b"127.0.0.1")]}
    with pytest.raises(ConsoleAuthError):
        principal_for(scope, org_did=DID, loopback_role="read")
    for host in ("127.0.0.1", "::1", "127.8.9.10"):
        assert principal_for({"client": (host, 1)}, org_did=DID, loopback_role="read").role == "read"


def test_tls_without_a_client_certificate_is_refused():
    scope = {"client": ("127.0.0.1", 1), "extensions": {"tls": {"client_cert_chain": []}}}
    with pytest.raises(ConsoleAuthError) as err:
        principal_for(scope, org_did=DID, loopback_role="write")
    assert err.value.reason == "TLS_REQUIRED"


def test_certificate_roles_come_from_the_issued_san():
    tls = mint_tls_material(org_name="hospital", org_did=DID)
    assert principal_from_cert(tls.operator_cert_pem.decode(), org_did=DID).role == "write"
    with pytest.raises(ConsoleAuthError):
        principal_from_cert(tls.cert_pem.decode(), org_did=DID)  # the node certificate
    cert, _ = issue_client_certificate(
        ca_pem=tls.ca_pem, ca_key_pem=tls.ca_key_pem, san=DID + "#console-read:carol", common_name="carol"
    )
    p = principal_from_cert(cert.decode(), org_did=DID)
    assert (p.role, p.actor, p.via) == ("read", DID + "#console-read:carol", "mtls")


def test_session_cookie_forged_expired_and_foreign():
    codec = SessionCodec(b"k" * 32)
    cookie = codec.dumps({"csrf": "abc"})
    assert codec.loads(cookie) == {"csrf": "abc"}
    assert codec.loads(None) is None
    for bad in (cookie[:-2] + "xx", "garbage", SessionCodec(b"o" * 32).dumps({"csrf": "abc"})):
        with pytest.raises(ConsoleAuthError) as err:
            codec.loads(bad)
        assert err.value.reason == "FORGED_SESSION" and err.value.status == 403
    with pytest.raises(ConsoleAuthError):
        codec.loads("a" * 5000)


def test_csrf_token_must_match():
    check_csrf({"csrf": "t0k"}, "t0k")
    for submitted in (None, "", "other"):
        with pytest.raises(ConsoleAuthError):
            check_csrf({"csrf": "t0k"}, submitted)
    with pytest.raises(ConsoleAuthError):
        check_csrf({}, "")  # no vacuous match


@pytest.mark.parametrize(
    "query, name",
    [
        ("decision=perhaps", "decision"),
        ("kind=nope", "kind"),
        ("since=last+week", "since"),
        ("before=-3", "before"),
        ("before=" + "9" * 25, "before"),
        ("zzz=1", "zzz"),
        ("purpose=a&purpose=b", "purpose"),
        ("field=" + "f" * 257, "field"),
    ],
)
def test_malformed_filters_name_the_parameter(query, name):
    with pytest.raises(FilterError) as err:
        LedgerFilterForm.parse(QueryParams(query))
    assert err.value.name == name


def test_filters_round_trip_through_the_query_string():
    form = LedgerFilterForm.parse(
        QueryParams("kind=denial&counterpart=relief&before=120&since=2026-01-01T00:00:00Z")
    )
    assert form.before == 120 and form.kind == "denial"
    assert LedgerFilterForm.parse(QueryParams(form.query_string(before=100))).before == 100
    assert "before" not in form.query_string(before=None)
