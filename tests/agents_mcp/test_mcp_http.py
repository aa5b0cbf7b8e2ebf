"""`accord mcp serve --http`: Streamable HTTP with per-agent bearer tokens (real client, real nodes)."""

from __future__ import annotations

import json

import pytest
from nodes.conftest import run

from agents_mcp.conftest import HttpServer, accord, http_session

pytestmark = pytest.mark.xdist_group("mcp")

TRIAGE = {"partner": "hospital", "purpose": "triage-coordination"}
MNI = {"patient_id", "triage_level", "mobility", "shelter"}


@pytest.fixture(scope="module")
def http_server(fed2):
    s = HttpServer(fed2.layout.orgs["relief"], "triage-coordinator")
    yield s
    s.stop()


def mint(fed2, agent="triage-coordinator", *extra):
    p = accord("agent", "token", agent, "--dir", str(fed2.layout.orgs["relief"]), "--json", *extra)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _post(url, headers):
    """A raw initialize POST: the bearer check's answer (httpx2 response)."""
    import httpx2

    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    return httpx2.post(
        url, json=body, headers={"Accept": "application/json, text/event-stream", **headers}, timeout=30
    )


def _post_status(url, headers):
    """The HTTP status and the ``WWW-Authenticate`` challenge of a raw initialize POST."""
    r = _post(url, headers)
    return r.status_code, r.headers.get("www-authenticate", "")


def _challenge_params(challenge):
    """``Bearer k="v", k2="v2"`` → {k: v} (the quoted-string values of RFC 6750 §3)."""
    import re

    scheme, _, rest = challenge.partition(" ")
    assert scheme.lower() == "bearer", challenge
    return dict(re.findall(r'([a-z_]+)="([^"]*)"', rest))


def test_a_minted_token_drives_the_agent_over_http(fed2, http_server):
    tok = mint(fed2)["token"]

    async def go():
        async with http_session(http_server.url, tok) as s:
            return await s.call_tool("request_records", {**TRIAGE, "subject": "patient-003"})

    r = run(go())
    assert not r.is_error, r.content
    assert r.structured_content["records"] and all(set(x) <= MNI for x in r.structured_content["records"])
    assert r.structured_content["receipt"]["verified"] is True


def test_missing_bad_revoked_and_foreign_tokens_are_refused(fed2, http_server):
    live = mint(fed2)
    other = mint(fed2, "logistics")  # a token of another agent of the same node
    revoked = mint(fed2)
    p = accord("agent", "token", "--dir", str(fed2.layout.orgs["relief"]), "--revoke", revoked["id"])
    assert p.returncode == 0, p.stderr
    assert _post_status(http_server.url, {"Authorization": f"Bearer {live['token']}"})[0] == 200
    for headers, reason in (
        ({}, "TOKEN_MISSING"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "TOKEN_MISSING"),  # not a Bearer credential
        ({"Authorization": "Bearer nonsense"}, "TOKEN_INVALID"),
        ({"Authorization": "Bearer " + live["token"][:-2] + "AA"}, "TOKEN_INVALID"),  # right id, wrong secret
        ({"Authorization": f"Bearer {revoked['token']}"}, "TOKEN_REVOKED"),
        ({"Authorization": f"Bearer {other['token']}"}, "TOKEN_INVALID"),
        ({"Authorization": "Bearer " + "a" * 5000}, "TOKEN_INVALID"),
    ):
        r = _post(http_server.url, headers)
        assert r.status_code == 401, headers
        # the reason in the RFC 6750 challenge's error_description and in the JSON body;
        # what the MCP authorization spec needs of the challenge (resource_metadata) is kept
        params = _challenge_params(r.headers["www-authenticate"])
        assert params["error"] == "invalid_token"
        assert params["error_description"].startswith(f"{reason}: "), (headers, params)
        assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
        body = r.json()
        assert body["reason"] == reason and body["error"] == "invalid_token", body
        assert body["error_description"] == params["error_description"]
        assert int(r.headers["content-length"]) == len(r.content)
        assert "a" * 100 not in r.text  # the refused token is not echoed


def test_expired_token_is_refused(fed2, http_server):
    import datetime as dt

    from federation import agent_tokens as at

    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    tok, _ = at.mint(fed2.layout.orgs["relief"], "triage-coordinator", ttl_days=1, now=past)
    r = _post(http_server.url, {"Authorization": f"Bearer {tok}"})
    assert r.status_code == 401 and r.json()["reason"] == "TOKEN_EXPIRED"
    assert 'error_description="TOKEN_EXPIRED: ' in r.headers["www-authenticate"]


def test_plain_http_off_loopback_is_refused(fed2):
    p = accord(
        "mcp",
        "serve",
        "--dir",
        str(fed2.layout.orgs["relief"]),
        "--agent",
        "triage-coordinator",
        "--http",
        "0.0.0.0:1",
    )
    assert p.returncode == 1 and "INSECURE_BIND" in p.stderr
