"""Typed node configuration (``node.toml`` in the node directory).

The configuration is validated whole (pydantic) before anything binds.
Paths in it are relative to the node directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from federation.a2a.config import A2AConfig
from federation.errors import ConfigError

CONFIG_NAME = "node.toml"
DOMAIN_SUFFIX = "accord.test"


class PolicyConfig(BaseModel):
    """Which Rego engine evaluates contracts.

    Attributes:
        engine: ``"regopy"`` (embedded, default) or ``"opa"`` (OPA REST API).
        opa_url: base URL of the OPA server when ``engine == "opa"``.
        opa_timeout_seconds: per-decision timeout for the OPA server, seconds.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: Literal["regopy", "opa"] = "regopy"
    opa_url: str = ""
    opa_timeout_seconds: float = Field(default=1.0, gt=0)


class RenewalConfig(BaseModel):
    """What the running node renews by itself before it expires (``[renewal]``).

    Attributes:
        agents_before_days: renew an agent's AgentCredential (and its TLS
            client certificate) when it expires within this many days; ``0``
            turns automatic agent renewal off (``accord agent renew`` by hand).
            Revoked agents are never renewed.
        agent_days: validity of an automatically renewed agent credential, days.
        tls_before_days: renew the node's own TLS certificates (node and
            operator) when the node certificate expires within this many days;
            ``0`` turns it off (``accord node renew-tls`` by hand).
        tls_days: validity of automatically renewed TLS certificates, days.
        check_interval_seconds: how often the node looks, seconds.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    agents_before_days: float = Field(default=7.0, ge=0, le=3650)
    agent_days: int = Field(default=30, ge=1, le=3650)
    tls_before_days: float = Field(default=30.0, ge=0, le=3650)
    tls_days: int = Field(default=365, ge=1, le=3650)
    check_interval_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _window_inside_validity(self) -> RenewalConfig:
        if self.agents_before_days and self.agents_before_days >= self.agent_days:
            raise ValueError(
                f"agents_before_days {self.agents_before_days} must be less than agent_days "
                f"{self.agent_days}: a renewed credential would be due again at once"
            )
        if self.tls_before_days and self.tls_before_days >= self.tls_days:
            raise ValueError(
                f"tls_before_days {self.tls_before_days} must be less than tls_days {self.tls_days}"
            )
        return self


class NodeConfig(BaseModel):
    """The whole node configuration.

    Attributes:
        org_name: short organization name, ``[a-z0-9-]+`` (e.g. ``"hospital"``).
        org_did: organization DID: ``did:web:<org_name>.accord.test`` by default, or
            the organization's own ``did:web:DOMAIN`` (``node init --did``); its DID
            document is served at ``/.well-known/did.json`` on ``http_listen``.
        listen: ``HOST:PORT`` the gRPC server binds (port 0 = any free port).
        advertise: ``HOST:PORT`` peers dial (defaults to ``listen``).
        database_url: SQLAlchemy URL of the node database (ledger included):
            ``sqlite:///PATH`` (relative to the node directory) or
            ``postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DB``; another
            backend or driver is refused at load (``check_database_url``).
        metrics_port: Prometheus exporter port on 127.0.0.1 (0 = disabled).
        http_listen: ``HOST:PORT`` for the C2SP tlog-tiles read endpoints and the
            tlog-witness ``add-checkpoint`` endpoint over HTTP ("" = off).
        console: serve the operator console on ``http_listen`` too (needs
            ``http_listen``): on a loopback address over plain HTTP to local
            clients only; off loopback the listener then speaks TLS and the console
            requires an operator client certificate of the node's CA
            (``accord console issue-cert``; ``docs/console.md``).
        console_write: grant the console's write role to loopback requests (the
            ``accord console --write`` of the built-in console); only with a loopback
            ``http_listen`` (off loopback the role comes from the certificate).
        session_ttl_seconds: lifetime of a federation session, seconds.
        max_sessions_per_agent: open sessions one agent of a peer may hold here;
            beyond it ``OpenSession`` is RESOURCE_EXHAUSTED (``SESSION_LIMIT_AGENT``).
        max_sessions_per_peer: open sessions one peer organization may hold here
            (``SESSION_LIMIT_PEER``).
        max_challenges_per_peer: unused challenges one peer may hold (``CHALLENGE_LIMIT``).
        presession_rate_limit: ``GetChallenge`` + ``OpenSession`` calls allowed
            per peer in a moving window, before any agent is authenticated, in
            the ``limits`` notation (``"200 per 4 seconds"``); beyond it the call
            is RESOURCE_EXHAUSTED (``PRESESSION_RATE_LIMITED``).
        presentation_concurrency: presentations of one peer verified at once;
            further ``OpenSession`` calls of that peer wait their turn.
        status_list_ttl_seconds: how long a fetched peer status list is cached.
        verify_workers: worker processes verifying presentations (``credentials.pool``).
        verify_deadline_seconds: longest a presentation's verification may take, seconds;
            past it the session is refused (``VERIFICATION_TIMEOUT``) and the workers replaced.
        max_request_bytes: largest accepted message, bytes.
        clock_skew_seconds: accepted |now - request timestamp|, seconds.
        ledger_batch_max: most entries integrated per ledger batch.
        witnesses: the witness policy's witnesses (C2SP tlog-policy): names of
            pinned peers whose witnesses cosign this node's checkpoints. Only
            these count; pinning another organization (a partner, the
            conformance suite's tester) never changes the policy. ``[]`` = no
            witness: checkpoints are signed but never WITNESSED.
            ``accord peer add --witness`` and ``accord peer remove`` edit it.
        witness_quorum: cosignatures from this many of ``witnesses`` make a
            checkpoint WITNESSED; at most ``len(witnesses)`` (checked at load,
            never silently capped).
        witness_interval_seconds: how often checkpoints are sent to the witnesses, seconds.
        auto_migrate: ``node start`` upgrades the database schema to this
            version's head (Alembic) by itself; with ``false`` it refuses a
            database that is behind and the operator runs ``accord node migrate``
            (recommended with PostgreSQL replicas: one upgrade, at a chosen time).
        peer_endpoints: the addresses to dial for a peer instead of its pinned
            bundle's ``endpoint`` (a peer run as several replicas, or reached
            through another network): organization name -> list of
            ``HOST:PORT`` (1 to 16), dialled in turn (round robin per call,
            skipping one whose connection is failing). Every address is
            authenticated as the bundle's is (pinned CA, the bundle host's name).
        policy: the Rego engine settings.
        renewal: what the node renews by itself before it expires (agent
            credentials, its TLS certificates): :class:`RenewalConfig`.
        provider_agent: the provider-side agent model (``federation.provider_agents``):
            what this organization's agent offers before the gate.
        a2a: the agents exposed to partners over A2A (:mod:`federation.a2a.config`).

    Unknown keys are refused (``extra="forbid"``): a typo, or a key from an
    older version such as the removed test-only ``unsafe_misbehaviour``, is a
    :class:`ConfigError`, never silently ignored. Nodes that break the protocol
    on purpose are built in test code (``interop_tests.misbehaving``).

    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    org_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    org_did: str
    listen: str = "127.0.0.1:0"
    advertise: str = ""
    database_url: str = "sqlite:///node.db"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    http_listen: str = ""
    console: bool = False
    console_write: bool = False
    session_ttl_seconds: int = Field(default=900, gt=0)
    max_sessions_per_agent: int = Field(default=256, gt=0)
    max_sessions_per_peer: int = Field(default=4096, gt=0)
    max_challenges_per_peer: int = Field(default=1024, gt=0)
    presession_rate_limit: str = "200 per 4 seconds"
    presentation_concurrency: int = Field(default=4, gt=0)
    status_list_ttl_seconds: float = Field(default=30.0, ge=0)
    verify_workers: int = Field(default=2, ge=1, le=64)
    verify_deadline_seconds: float = Field(default=10.0, gt=0)
    max_request_bytes: int = Field(default=1 << 20, gt=0)
    clock_skew_seconds: int = Field(default=120, gt=0)
    ledger_batch_max: int = Field(default=512, gt=0)
    witnesses: list[str] = Field(default_factory=list, max_length=64)
    witness_quorum: int = Field(default=1, ge=1, le=64)
    witness_interval_seconds: float = Field(default=2.0, gt=0)
    auto_migrate: bool = True
    peer_endpoints: dict[str, list[str]] = Field(default_factory=dict, max_length=256)
    policy: PolicyConfig = PolicyConfig()
    renewal: RenewalConfig = RenewalConfig()
    provider_agent: str = "source"
    a2a: A2AConfig = A2AConfig()

    @field_validator("presession_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        import limits

        try:
            limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"expected a rate like '200 per 4 seconds', got {value!r}") from exc
        return value

    @field_validator("witnesses")
    @classmethod
    def _witness_names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
                raise ValueError(f"not an organization name: {name!r}")
        if len(set(value)) != len(value):
            raise ValueError("a witness is named twice")
        return value

    @model_validator(mode="after")
    def _quorum_reachable(self) -> NodeConfig:
        if self.witnesses and self.witness_quorum > len(self.witnesses):
            raise ValueError(
                f"witness_quorum {self.witness_quorum} is more than the {len(self.witnesses)} witness(es) "
                f"named in witnesses: checkpoints could never be witnessed"
            )
        if self.org_name in self.witnesses:
            raise ValueError("a node cannot witness its own log: remove its name from witnesses")
        if self.console and not self.http_listen:
            raise ValueError("console = true serves the console on http_listen: set http_listen too")
        if self.console_write and not self.console:
            raise ValueError("console_write needs console = true")
        if self.console_write and not _is_loopback(self.http_listen.rpartition(":")[0]):
            raise ValueError(
                "console_write grants the write role to plain loopback requests only; with http_listen "
                "off loopback the role comes from the operator certificate"
            )
        return self

    @field_validator("org_did")
    @classmethod
    def _org_did(cls, value: str) -> str:
        return check_did_web(value)

    @field_validator("peer_endpoints")
    @classmethod
    def _peer_endpoints(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        import re

        for name, addresses in value.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
                raise ValueError(f"peer_endpoints: not an organization name: {name!r}")
            if not 1 <= len(addresses) <= 16:
                raise ValueError(f"peer_endpoints.{name}: 1 to 16 addresses")
            for a in addresses:
                host, sep, port = a.rpartition(":")
                if not sep or not host or len(a) > 262 or not port.isdigit() or not 0 < int(port) <= 65535:
                    raise ValueError(f"peer_endpoints.{name}: expected HOST:PORT, got {a[:80]!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("listen", "advertise", "http_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value == "":
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value


def _is_loopback(host: str) -> bool:
    """True iff ``host`` is ``localhost`` or a loopback IP address (``[::1]`` included)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


SUPPORTED_DATABASES = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}
"""Database backends the node runs on (SQLAlchemy backend name -> accepted drivers)."""


def check_database_url(value: str) -> str:
    """Check a SQLAlchemy database URL names a backend and driver the node runs on.

    Accepted: ``sqlite:///PATH`` (relative to the node directory) and
    ``postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DB``. Nothing is
    connected to; the message never repeats a password.

    Raises:
        ValueError: not a URL, or another backend or driver.

    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    expected = "expected sqlite:///node.db or postgresql+psycopg://USER@HOST:PORT/DB"
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL ({expected})") from None
    backend = url.get_backend_name()
    try:
        driver = url.get_driver_name()
    except NoSuchModuleError:
        driver = ""
    if driver not in SUPPORTED_DATABASES.get(backend, ()):
        raise ValueError(f"unsupported database {url.drivername!r} ({expected})")
    if backend == "sqlite" and not url.database:
        raise ValueError(f"an SQLite URL needs a file path ({expected})")
    return value


#: A did:web DID (W3C did:web method §3.1): a host (DNS name, lower case), an
#: optional port as ``%3A<port>``, optional ``:``-separated path segments.
DID_WEB_PATTERN = (
    r"did:web:(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]"
    r"(?:%3A[0-9]{1,5})?(?::[A-Za-z0-9._~-]{1,64}){0,8}"
)


def check_did_web(value: str) -> str:
    """Check ``value`` is a did:web DID of a domain (``did:web:example.org[:path…]``), at most 256 characters.

    Raises:
        ValueError: it is not.

    """
    import re

    if len(value) > 256 or not re.fullmatch(DID_WEB_PATTERN, value):
        raise ValueError(f"expected did:web:DOMAIN[:PATH…] (lower-case host), got {value[:80]!r}")
    return value


def did_web_document_path(did: str) -> str:
    """HTTP path of a did:web DID document: ``/.well-known/did.json`` or ``/<path>/did.json`` (did:web)."""
    parts = did.split(":")[3:]
    return "/" + "/".join(parts) + "/did.json" if parts else "/.well-known/did.json"


def org_did_for(org_name: str) -> str:
    """Return the organization DID for a name: ``did:web:<name>.accord.test``."""
    return f"did:web:{org_name}.{DOMAIN_SUFFIX}"


def resolve_node_dir(path: str | os.PathLike[str] | None) -> Path:
    """Return the node directory: ``path``, else ``$ACCORD_NODE_DIR``, else the cwd."""
    if path:
        return Path(path).resolve()
    env = os.environ.get("ACCORD_NODE_DIR")
    return Path(env).resolve() if env else Path.cwd()


def load_config(node_dir: Path) -> NodeConfig:
    """Load and validate ``node.toml`` from a node directory.

    Raises:
        ConfigError: the file is missing, not TOML, or fails validation.

    """
    path = node_dir / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"{path} not found: not a node directory (run `accord node init`)",
            metadata={"path": str(path)},
        )
    try:
        text = path.read_text()
        data = tomllib.loads(text)
        return NodeConfig.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        line = _line_of(text, [str(p) for p in first["loc"]])
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(
            f"{where}: {loc}: {validation_message(first)}",
            metadata={"path": str(path), "field": loc, "line": str(line or "")},
        ) from exc


def validation_message(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error, without pydantic's ``"Value error, "`` prefix."""
    msg = str(error.get("msg", ""))
    return msg.removeprefix("Value error, ")


def _line_of(text: str, loc: list[str]) -> int | None:
    """1-based line of ``key = ...`` for a config field (``[table]`` then ``key`` when nested)."""
    if not loc:
        return None
    table, key = (loc[0], loc[1]) if len(loc) > 1 else ("", loc[0])
    current = ""
    for n, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[]").strip()
            if table and current == table and len(loc) == 1:
                return n
            continue
        name = stripped.split("=", 1)[0].strip().strip('"')
        if "=" in stripped and name == key and current == table:
            return n
    return None


def save_config(node_dir: Path, config: NodeConfig) -> None:
    """Validate ``config`` whole, then write ``node.toml`` owner-only (0600), atomically.

    The file may hold a database password.

    Raises:
        ConfigError: the configuration is invalid (nothing is written).

    """
    from federation.paths import write_private

    try:  # model_copy(update=...) does not validate: check the whole before writing
        config = NodeConfig.model_validate(config.model_dump())
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "node.toml"
        raise ConfigError(f"{node_dir / CONFIG_NAME}: {loc}: {validation_message(first)}") from exc
    write_private(node_dir / CONFIG_NAME, tomli_w.dumps(config.model_dump(mode="json")))


def database_url_for(node_dir: Path, config: NodeConfig) -> str:
    """Resolve a relative ``sqlite:///`` URL against the node directory."""
    url = config.database_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(node_dir / url[len(prefix) :])
    return url
