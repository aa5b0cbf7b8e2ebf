"""What the contracts in force let one agent ask for: the MCP tools' schemas and local checks.

The catalog is read from the agent's own node directory (``contracts/``,
``peers/``, the agent's wallet): contracts where this organization is the
requester, in force now, with a pinned provider. It drives

- the tools' JSON Schemas (partners, purposes and field names as enums),
- the adapter's local refusals: a partner, purpose, resource or field that the
  signed contract text itself rules out is refused before anything crosses
  (reasons ``UNKNOWN_PEER``, ``UNKNOWN_PURPOSE``, ``RESOURCE_NOT_IN_CONTRACT``,
  ``FIELD_NOT_IN_CONTRACT``, ``AGGREGATE_NOT_ALLOWED``; no decision was reached,
  so nothing is ledgered),
- :func:`explain`: what a reason code means and what would be allowed instead.

It is advisory for everything else: the provider's node decides (scopes,
trust, budgets, the MNI gate, the reconstruction auditor) and both ledgers
record that decision. The node verifies contract signatures; the catalog only
parses the files (a tampered file can make the adapter refuse more, never
release more).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import FederationError, InvalidRequestError, PeerError

# ---------------------------------------------------------------- bounds (checked before any work)

MAX_ARGUMENTS_BYTES = 16 * 1024
"""A tool call's arguments, serialized as JSON, at most this many bytes."""
MAX_NAME_CHARS = 200
"""Partner, purpose, resource, contract id, column, reason code: at most this many characters."""
MAX_SUBJECT_CHARS = 256
"""A subject key (or ``*``)."""
MAX_FIELDS = 64
"""At most this many field names in one request."""
MAX_FIELD_CHARS = 128
"""A field name (a dotted path)."""
MAX_PREDICATE_BYTES = 4096
"""An aggregate predicate, serialized as JSON."""
MAX_LIST_LIMIT = 200
"""``list_disclosures`` returns at most this many entries."""


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _safe_name(name: str) -> bool:
    """True for an agent name as ``accord agent register`` allows it (no path separators)."""
    return bool(_NAME_RE.match(name))


class AdapterRefusal(FederationError):
    """Refused by the adapter before anything crossed (no decision reached, nothing ledgered).

    ``metadata["crossed"]`` is ``"false"``; the reason is one of the base
    policy's codes (the same the provider would have used), so an agent sees one
    vocabulary whichever side refused.
    """

    status = "PERMISSION_DENIED"
    caller_fault = True


@dataclass(frozen=True)
class PurposeView:
    """One purpose of one contract, as this agent sees it.

    Attributes:
        contract_id / contract_title: the contract.
        purpose: the purpose name.
        resources / subjects: what it may read (subject ``*`` = any).
        mni: fields always released when asked (Minimum Necessary Information).
        optional: optional field → the effective trust it needs (0..1).
        aggregates: ``{"dataset", "kinds", "columns", "allow_ids"}`` or None.
        required_scopes / missing_scopes: scopes it needs; those this agent's credential lacks.
        max_records: most records one answer carries, or None.

    """

    contract_id: str
    contract_title: str
    purpose: str
    resources: tuple[str, ...]
    subjects: tuple[str, ...]
    mni: tuple[str, ...]
    optional: dict[str, float]
    aggregates: dict[str, Any] | None
    required_scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    max_records: int | None

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the purpose names (MNI first, then optional)."""
        return self.mni + tuple(f for f in self.optional if f not in self.mni)

    def to_json(self) -> dict[str, Any]:
        """A JSON object for tool results."""
        return {
            "contract_id": self.contract_id,
            "contract_title": self.contract_title,
            "purpose": self.purpose,
            "resources": list(self.resources),
            "subjects": list(self.subjects),
            "mni_fields": list(self.mni),
            "optional_fields": {f: {"min_trust": t} for f, t in self.optional.items()},
            "aggregates": self.aggregates,
            "required_scopes": list(self.required_scopes),
            "missing_scopes": list(self.missing_scopes),
            "max_records": self.max_records,
        }


@dataclass(frozen=True)
class PartnerView:
    """A pinned partner organization with contracts this agent can ask under."""

    name: str
    org: str
    purposes: tuple[PurposeView, ...]

    def to_json(self) -> dict[str, Any]:  # noqa: D102
        return {"name": self.name, "org": self.org, "purposes": [p.to_json() for p in self.purposes]}


@dataclass
class Catalog:
    """The contracts in force for one agent (see the module docstring).

    Attributes:
        agent: agent name; agent_did: its DID; scopes: its credential's scopes.
        partners: partner name → view (only partners with a contract in force).
        peers: every pinned peer, name → org DID (to tell ``UNKNOWN_PEER`` from "no contract").
        contracts: contract id → the contract document (as registered).

    """

    agent: str
    agent_did: str
    scopes: tuple[str, ...]
    partners: dict[str, PartnerView] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(
        cls, node_dir: Path, *, agent: str, agent_did: str, scopes: list[str], now: dt.datetime
    ) -> Catalog:
        """Read ``node_dir``'s peers and contracts for ``agent`` (files that do not parse are skipped)."""
        from federation.config import load_config
        from federation.paths import NodePaths
        from federation.peers import PeerRegistry
        from policy import Contract, PolicyError

        paths = NodePaths(Path(node_dir))
        own = load_config(paths.root).org_did
        peers = {b.org_name: b.org_did for b in PeerRegistry.load(paths.peers)}
        by_did = {did: name for name, did in peers.items()}
        cat = cls(agent=agent, agent_did=agent_did, scopes=tuple(scopes), peers=peers)
        grouped: dict[str, list[PurposeView]] = {}
        if paths.contracts.is_dir():
            for p in sorted(paths.contracts.glob("*.json")):
                try:
                    c = Contract.load(p)
                except (PolicyError, ValueError, OSError):
                    continue
                if (
                    c.parties.requester.org != own
                    or c.parties.provider.org not in by_did
                    or not c.in_force(now)
                ):
                    continue
                if len(c.signatures) < 2:  # the node refuses a contract one party has not signed
                    continue
                cat.contracts[c.id] = c.to_dict()
                for name, pu in sorted(c.purposes.items()):
                    agg = pu.aggregates
                    grouped.setdefault(by_did[c.parties.provider.org], []).append(
                        PurposeView(
                            contract_id=c.id,
                            contract_title=c.title,
                            purpose=name,
                            resources=tuple(pu.resources),
                            subjects=tuple(pu.subjects),
                            mni=tuple(pu.mni),
                            optional={f: float(o.min_trust) for f, o in pu.optional.items()},
                            aggregates=None
                            if agg is None
                            else {
                                "dataset": agg.dataset,
                                "kinds": list(agg.kinds),
                                "columns": list(agg.columns),
                                "allow_ids": agg.allow_ids,
                            },
                            required_scopes=tuple(pu.required_scopes),
                            missing_scopes=tuple(s for s in pu.required_scopes if s not in scopes),
                            max_records=pu.max_records,
                        )
                    )
        for name, views in sorted(grouped.items()):
            cat.partners[name] = PartnerView(name=name, org=peers[name], purposes=tuple(views))
        return cat

    # ------------------------------------------------------------ enums for the schemas

    def partner_names(self) -> list[str]:
        """Partner names with a contract in force (the ``partner`` enum)."""
        return sorted(self.partners)

    def purpose_names(self, *, aggregates: bool) -> list[str]:
        """Purposes that release records (``aggregates=False``) or answer aggregates."""
        return sorted(
            {
                v.purpose
                for p in self.partners.values()
                for v in p.purposes
                if (v.aggregates is not None) == aggregates
            }
        )

    def field_names(self) -> list[str]:
        """Every field any record purpose names (the ``fields`` items enum)."""
        return sorted({f for p in self.partners.values() for v in p.purposes for f in v.fields})

    def columns(self) -> list[str]:
        """Every column an aggregate purpose names."""
        return sorted(
            {
                c
                for p in self.partners.values()
                for v in p.purposes
                if v.aggregates
                for c in v.aggregates["columns"]
            }
        )

    # ------------------------------------------------------------ local checks

    def partner(self, name: str) -> PartnerView:
        """The partner named ``name`` (organization name or DID).

        Raises:
            PeerError: ``UNKNOWN_PEER``: not a pinned organization.
            AdapterRefusal: ``UNKNOWN_CONTRACT``: pinned, but no contract in force for this agent's org.

        """
        for p in self.partners.values():
            if name in (p.name, p.org):
                return p
        if name in self.peers or name in self.peers.values():
            raise AdapterRefusal(
                f"no contract in force with {name!r}",
                reason="UNKNOWN_CONTRACT",
                metadata={"crossed": "false"},
            )
        raise PeerError(f"{name[:80]!r} is not a pinned partner", metadata={"crossed": "false"})

    def purpose(self, partner: PartnerView, purpose: str, contract_id: str | None = None) -> PurposeView:
        """The purpose ``purpose`` of a contract with ``partner`` (``contract_id`` when several carry it).

        Raises:
            AdapterRefusal: ``UNKNOWN_PURPOSE`` (no such purpose), ``UNKNOWN_CONTRACT``
                (``contract_id`` names no contract with this partner).

        """
        views = [v for v in partner.purposes if v.purpose == purpose]
        if contract_id:
            if not any(v.contract_id == contract_id for v in partner.purposes):
                raise AdapterRefusal(
                    f"no contract {contract_id!r} with {partner.name}",
                    reason="UNKNOWN_CONTRACT",
                    metadata={"crossed": "false"},
                )
            views = [v for v in views if v.contract_id == contract_id]
        if not views:
            raise AdapterRefusal(
                f"no contract with {partner.name} has purpose {purpose[:80]!r}",
                reason="UNKNOWN_PURPOSE",
                metadata={"crossed": "false", "partner": partner.name},
            )
        return views[0]

    def check_records(self, view: PurposeView, *, resource: str, fields: list[str]) -> None:
        """Refuse what the contract text rules out for a record request.

        Raises:
            AdapterRefusal: ``AGGREGATE_NOT_ALLOWED`` (an aggregate-only purpose),
                ``RESOURCE_NOT_IN_CONTRACT``, ``FIELD_NOT_IN_CONTRACT``
                (``metadata["fields"]`` names them).

        """
        if view.aggregates is not None and not view.fields:
            raise AdapterRefusal(
                f"purpose {view.purpose} answers aggregate queries only",
                reason="AGGREGATE_NOT_ALLOWED",
                metadata={"crossed": "false"},
            )
        if resource not in view.resources:
            raise AdapterRefusal(
                f"resource {resource[:80]!r} is not in purpose {view.purpose}",
                reason="RESOURCE_NOT_IN_CONTRACT",
                metadata={"crossed": "false"},
            )
        unknown = [f for f in fields if f not in view.fields]
        if unknown:
            raise AdapterRefusal(
                f"fields not in purpose {view.purpose}: {', '.join(unknown)[:300]}",
                reason="FIELD_NOT_IN_CONTRACT",
                metadata={"crossed": "false", "fields": ",".join(unknown)[:300]},
            )

    def check_aggregate(self, view: PurposeView, *, resource: str, kind: str, column: str) -> None:
        """Refuse an aggregate the contract text rules out.

        Raises:
            AdapterRefusal: ``AGGREGATE_NOT_ALLOWED`` (no aggregates in this purpose, or a
                kind/column it does not list), ``RESOURCE_NOT_IN_CONTRACT``.

        """
        agg = view.aggregates
        if agg is None or kind not in agg["kinds"] or column not in agg["columns"]:
            raise AdapterRefusal(
                f"purpose {view.purpose} does not allow {kind[:20]}({column[:80]})",
                reason="AGGREGATE_NOT_ALLOWED",
                metadata={"crossed": "false"},
            )
        if resource not in view.resources:
            raise AdapterRefusal(
                f"resource {resource[:80]!r} is not in purpose {view.purpose}",
                reason="RESOURCE_NOT_IN_CONTRACT",
                metadata={"crossed": "false"},
            )


# ---------------------------------------------------------------- argument bounds


def bound_arguments(arguments: Any) -> dict[str, Any]:
    """Check a tool call's arguments object before any work.

    Raises:
        InvalidRequestError: ``ARGUMENT_TOO_LARGE`` (over :data:`MAX_ARGUMENTS_BYTES`
            serialized), ``MALFORMED_REQUEST`` (not an object).

    """
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise InvalidRequestError("tool arguments must be an object", reason="MALFORMED_REQUEST")
    size = len(json.dumps(arguments, separators=(",", ":"), default=str).encode())
    if size > MAX_ARGUMENTS_BYTES:
        raise InvalidRequestError(
            f"tool arguments are {size} bytes; at most {MAX_ARGUMENTS_BYTES}",
            reason="ARGUMENT_TOO_LARGE",
            metadata={"limit": str(MAX_ARGUMENTS_BYTES), "size": str(size)},
        )
    return arguments


def string_arg(
    args: dict[str, Any], name: str, *, limit: int, required: bool = True, default: str = ""
) -> str:
    """The string argument ``name`` (≤ ``limit`` characters).

    Raises:
        InvalidRequestError: ``MALFORMED_REQUEST`` (missing or not a string), ``ARGUMENT_TOO_LARGE``.

    """
    v = args.get(name)
    if v is None:
        if required:
            raise InvalidRequestError(f"argument {name!r} is required", reason="MALFORMED_REQUEST")
        return default
    if not isinstance(v, str):
        raise InvalidRequestError(f"argument {name!r} must be a string", reason="MALFORMED_REQUEST")
    if len(v) > limit:
        raise InvalidRequestError(
            f"argument {name!r} has {len(v)} characters; at most {limit}",
            reason="ARGUMENT_TOO_LARGE",
            metadata={"argument": name, "limit": str(limit)},
        )
    return v


def fields_arg(args: dict[str, Any], name: str = "fields") -> list[str] | None:
    """The list-of-strings argument ``name``, or None.

    At most :data:`MAX_FIELDS` names of at most :data:`MAX_FIELD_CHARS` characters each.

    Raises:
        InvalidRequestError: ``MALFORMED_REQUEST``, ``ARGUMENT_TOO_LARGE``.

    """
    v = args.get(name)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidRequestError(f"argument {name!r} must be a list of strings", reason="MALFORMED_REQUEST")
    if len(v) > MAX_FIELDS or any(len(x) > MAX_FIELD_CHARS for x in v):
        raise InvalidRequestError(
            f"argument {name!r}: at most {MAX_FIELDS} names of at most {MAX_FIELD_CHARS} characters",
            reason="ARGUMENT_TOO_LARGE",
            metadata={"argument": name, "limit": str(MAX_FIELDS)},
        )
    return list(dict.fromkeys(v))


# ---------------------------------------------------------------- explaining a reason

MEANINGS: dict[str, str] = {
    "UNKNOWN_PEER": "the partner is not an organization this node has pinned",
    "UNKNOWN_CONTRACT": "no contract in force between the two organizations covers this request",
    "CONTRACT_NOT_IN_FORCE": "the contract is not valid now (not yet valid, expired or retired)",
    "UNKNOWN_PURPOSE": "the contract has no such purpose",
    "RESOURCE_NOT_IN_CONTRACT": "the purpose does not cover this resource",
    "SUBJECT_NOT_IN_CONTRACT": "the purpose does not cover this subject",
    "FIELD_NOT_IN_CONTRACT": "a field asked for is neither an MNI nor an optional field of the purpose",
    "MISSING_SCOPE": "the agent's credential lacks a scope the purpose requires",
    "TRUST_TOO_LOW": "an optional field needs more effective trust than the provider grants now",
    "TRUST_BUDGET_EXHAUSTED": "the contract's trust budget for optional fields is spent for this window",
    "RATE_LIMITED": "the contract's request rate limit was reached",
    "SESSION_LIMIT": "the session reached the contract's request or field limit",
    "EMPTY_REQUEST": "no field was asked for",
    "AGGREGATE_NOT_ALLOWED": "the purpose does not allow this aggregate (kind, column or ids)",
    "RECONSTRUCTION_RISK": "the auditor refused: with earlier answers this one would reveal "
    "individual records",
    "EMPTY_SELECTION": "the predicate selects too few records to answer",
    "PRIVACY_BUDGET_EXHAUSTED": "the differential-privacy budget of this scope is spent",
    "AUTHORIZATION_DRIFT": "a delegated request asked for more than the delegation allows",
    "REVOKED": "the agent's credential is revoked",
    "SUSPENDED": "the agent's credential is suspended",
    "PEER_UNAVAILABLE": "the partner's node could not be reached",
    "ARGUMENT_TOO_LARGE": "a tool argument exceeds the adapter's bounds",
    "MALFORMED_REQUEST": "a tool argument is missing or has the wrong type",
    "UNKNOWN_SUBJECT": "the provider holds no record for this subject",
}


def explain(catalog: Catalog, reason: str, *, partner: str = "", purpose: str = "") -> dict[str, Any]:
    """What ``reason`` means and what this agent could ask for instead.

    Returns:
        ``{"reason", "status", "meaning", "allowed_instead"}``; ``allowed_instead``
        lists the purposes (with fields, resources, scopes) open to this agent with
        ``partner`` (every partner when not given or unknown), narrowed to
        ``purpose`` when it exists.

    """
    from federation.reasons import status_for

    code = reason.split(":", 1)[0]
    views: list[PurposeView] = []
    partners = [catalog.partners[partner]] if partner in catalog.partners else list(catalog.partners.values())
    for p in partners:
        for v in p.purposes:
            if purpose and any(x.purpose == purpose for x in p.purposes) and v.purpose != purpose:
                continue
            views.append(v)
    allowed: list[dict[str, Any]] = []
    for v in views:
        partner_name = next(p.name for p in partners if v in p.purposes)
        item: dict[str, Any] = {"partner": partner_name, **v.to_json()}
        if code == "MISSING_SCOPE" and v.missing_scopes:
            item["note"] = "this agent lacks " + ", ".join(v.missing_scopes)
        elif code == "TRUST_TOO_LOW":
            item["note"] = "MNI fields are released at any trust; optional fields need their min_trust"
        allowed.append(item)
    if code == "MISSING_SCOPE":  # purposes the agent can use come first
        allowed.sort(key=lambda i: bool(i["missing_scopes"]))
    return {
        "reason": code,
        "status": status_for(code, "PERMISSION_DENIED"),
        "meaning": MEANINGS.get(code, "see the reason table in docs/protocol.md"),
        "allowed_instead": allowed,
    }
