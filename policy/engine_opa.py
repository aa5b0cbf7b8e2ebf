"""Policy engine backed by an OPA server, over OPA's REST API (``opa-python-client``).

``load`` uploads the hook modules (``PUT /v1/policies/accord_hook_<name>``),
the base policy (``PUT /v1/policies/accord``) and then the contracts
(``PUT /v1/data/accord_contracts``), and removes hooks no longer used;
``decide`` asks ``POST /v1/data/accord/decision`` with ``{"input": …}``
(OPA REST API, "Data API" section). Same Rego, same decisions as the
embedded engine.

OPA's REST API has no multi-document transaction: while ``load`` runs, and
after it fails, the engine is *unloaded* and denies every request with
``ENGINE_ERROR`` until a load succeeds. An unreachable, slow (beyond
``timeout_seconds``) or garbled OPA also gives ``ENGINE_ERROR``, counted in
``stats.failures``: never an allow.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from opa_client import OpaClient
from opa_client.errors import (
    ConnectionsError,
    DeletePolicyError,
    PolicyNotFoundError,
    RegoParseError,
)

from policy.contract import Contract
from policy.decision import Decision, DecisionInput, jcs_digest
from policy.engine import (
    DATA_ROOT,
    EngineStats,
    MalformedResult,
    base_policy,
    bundle_hash,
    contracts_document,
    decision_from_result,
    engine_error_decision,
)
from policy.engine_regopy import check_hook_rules
from policy.errors import EngineError, RegoModuleError

__all__ = ["OpaRestEngine", "OpaTls"]

_CLIENT_ERRORS = (
    requests.RequestException,
    ConnectionsError,
    RegoParseError,
    PolicyNotFoundError,
    DeletePolicyError,
    ValueError,
    TypeError,
    KeyError,
)


@dataclass(frozen=True)
class OpaTls:
    """TLS settings for an ``https://`` OPA URL.

    Attributes:
        ca_file: PEM bundle of CAs that sign OPA's server certificate
            (None: the ``certifi`` bundle that ``requests`` ships).
        client_cert: PEM client certificate for mutual TLS, or None.
        client_key: PEM private key of ``client_cert``, or None.
    """

    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


class OpaRestEngine:
    """Decide through an OPA server (sidecar) speaking the REST Data API.

    Args:
        url: OPA base URL, e.g. ``"http://127.0.0.1:8181"`` (no path).
        policy_path: decision rule path under ``/v1/data`` (``"accord/decision"``).
        timeout_seconds: per-HTTP-request timeout, seconds.
        tls: :class:`OpaTls` for ``https`` URLs.
        token: bearer token if OPA runs with ``--authentication=token``.
        retries: retries of failed HTTP requests (default 0: fail fast, deny).

    Environment variables (``REQUESTS_CA_BUNDLE``, ``HTTPS_PROXY``…) are
    ignored: only ``url`` and ``tls`` decide where policy traffic goes and
    which server certificate is trusted.

    Raises:
        ValueError: the URL is not ``http(s)://host:port``.

    Attributes:
        name: ``"opa-rest"``.
        stats: :class:`~policy.engine.EngineStats` counters.
    """

    name = "opa-rest"

    def __init__(
        self,
        url: str,
        *,
        policy_path: str = "accord/decision",
        timeout_seconds: float = 1.0,
        tls: OpaTls | None = None,
        token: str | None = None,
        retries: int = 0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"OPA url must be http(s)://host[:port], got {url!r}")
        if parts.scheme == "https" and tls is None:
            tls = OpaTls()
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        port = parts.port or (443 if parts.scheme == "https" else 8181)
        ssl: Any = False
        cert: Any = None
        if tls is not None:
            ssl = tls.ca_file or True
            if tls.client_cert:
                cert = (tls.client_cert, tls.client_key) if tls.client_key else tls.client_cert
        self._client = OpaClient(
            host=parts.hostname,
            port=port,
            ssl=ssl,
            cert=cert,
            token=token,
            retries=retries,
            timeout=timeout_seconds,
        )
        # The configured endpoint and trust anchors are the only ones: requests
        # would otherwise let REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override
        # ``ca_file`` and HTTP(S)_PROXY reroute policy traffic.
        self._client._session.trust_env = False
        self._policy_path = policy_path.strip("/")
        self.stats = EngineStats()
        self._policy = base_policy()
        self._lock = threading.Lock()
        self._loaded = False
        self._hooks: set[str] = set()
        self._hashes: dict[str, str] = {}
        self._bundle_hash = ""

    @property
    def failures(self) -> int:
        """Decisions that became ``ENGINE_ERROR`` denials."""
        return self.stats.failures

    @property
    def bundle_hash(self) -> str:
        """Digest of the uploaded policy, hooks and data ("" before load)."""
        return self._bundle_hash

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close_connection()

    def load(self, contracts: Sequence[Contract]) -> None:
        """Upload hooks, the base policy and the contracts to OPA.

        Raises:
            ContractInvalidError: duplicate contract id or hook name.
            RegoModuleError: a hook defines rules outside its package or calls a
                non-deterministic built-in (checked on its compiled plan), or
                OPA rejects it (names the contract).
            EngineError: OPA unreachable or rejects the base policy or data.
        """
        contracts = list(contracts)
        data = contracts_document(contracts)
        for c in contracts:  # the hook's package and rules, read from its compiled form
            check_hook_rules(c)
        with self._lock:
            self._loaded = False
            hooks = {}
            for c in contracts:
                if c.rego_module is None:
                    continue
                hook_id = f"accord_hook_{c.hook_name}"
                try:
                    self._client.update_policy_from_string(c.rego_module, hook_id, rego_compat=False)
                except RegoParseError as exc:
                    raise RegoModuleError(
                        f"contract {c.id}: OPA rejects rego_module: {exc}",
                        metadata={"contract_id": c.id, "field": "rego_module"},
                    ) from None
                except _CLIENT_ERRORS as exc:
                    raise EngineError(f"OPA upload failed: {type(exc).__name__}") from None
                hooks[hook_id] = c.id
            try:
                self._client.update_policy_from_string(self._policy, "accord", rego_compat=False)
                self._client.update_or_create_data(data, DATA_ROOT)
                for stale in sorted(self._hooks - set(hooks)):
                    self._client.delete_policy(stale)
            except _CLIENT_ERRORS as exc:
                raise EngineError(f"OPA upload failed: {type(exc).__name__}: {exc}") from None
            self._hooks = set(hooks)
            self._hashes = {c.id: c.version_hash for c in contracts}
            self._bundle_hash = bundle_hash(self._policy, contracts)
            self._loaded = True

    def evaluate_raw(self, rego_input: dict[str, Any]) -> Any:
        """POST the input to the decision path; returns OPA's ``result`` value.

        Raises:
            EngineError: not loaded, HTTP/transport failure, non-JSON answer,
                or an undefined result.
        """
        if not self._loaded:
            raise EngineError("OPA engine not loaded")
        try:
            answer = self._client.query_rule(rego_input, self._policy_path)
        except _CLIENT_ERRORS as exc:
            raise EngineError(f"OPA query failed: {type(exc).__name__}") from None
        if not isinstance(answer, dict) or "result" not in answer:
            raise EngineError("OPA answer has no result (undefined decision)")
        return answer["result"]

    def decide(self, inp: DecisionInput) -> Decision:
        """Decide one request (see :class:`~policy.engine.PolicyEngine`)."""
        rego_input = inp.to_rego_input()
        digest = jcs_digest(rego_input)
        contract_hash = self._hashes.get(inp.contract_id, "")
        bh = self._bundle_hash
        try:
            raw = self.evaluate_raw(rego_input)
            decision = decision_from_result(
                raw,
                inp,
                contract_hash=contract_hash,
                bundle=bh,
                engine=self.name,
                input_digest=digest,
            )
        except (EngineError, MalformedResult) as exc:
            self.stats.count(failure=str(exc))
            return engine_error_decision(
                inp, contract_hash=contract_hash, bundle=bh, engine=self.name, input_digest=digest
            )
        self.stats.count()
        return decision
