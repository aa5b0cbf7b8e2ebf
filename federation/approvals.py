"""Human approval without fatigue (issue #15; docs/content-controls.md, "Human approval").

A contract's ``approval`` block (:class:`policy.contract.ApprovalPolicy`) names
requests that must wait for an operator: by released field, by the summed
sensitivity of released beyond-MNI fields, by effective trust τ, by trust-budget
use, or by purpose. Such a request, once the policy allowed it, is *held*: it
goes into the approval queue (``node_approvals``) and the requester gets
``FAILED_PRECONDITION``/``APPROVAL_PENDING`` with the approval id. An operator
decides with ``accord approvals approve|deny``; the decision is an Ed25519
signature by an **operator key** registered in the node (``node_operators``)
over the decision's bytes, carried next to the signature. The node verifies
every decision it acts on against the registered keys (a decision signed by
any other key is refused, ``APPROVAL_SIGNATURE_INVALID``) and writes an
``approval`` ledger entry for each decision and each expiry.

Against fatigue:

* **Batching**: requests of one *shape* (requester organization, contract and
  version, purpose, resource, requested fields — not the agent, not the
  subject) share one queue row; one decision covers them all for the policy's
  ``grant_seconds``. ``approve`` also takes several ids: one signature, one prompt.
* **Ranking**: each row has a risk in [0, 1] and a one-line reason
  (:func:`assess`); the queue lists the riskiest first.
* **Caps**: an operator signs at most ``max_prompts_per_operator_hour``
  decisions per hour (``APPROVER_CAP_REACHED``); what is not decided expires.
* **Expiry**: a pending row not decided within ``expires_seconds`` expires
  (fail closed: the requester sees ``APPROVAL_EXPIRED`` once, then may ask again).
* **Metrics**: requested, decided by outcome, time to decision, pending,
  approval rate (Prometheus, ``accord_approval_*``).

The module keeps a small API for the operator console (:class:`ApprovalQueue`:
``pending``, ``show``, ``decide``) beside what the node calls (``precheck``,
``hold``, ``settle``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from prometheus_client import Counter, Gauge, Histogram

from federation.clock import rfc3339
from federation.errors import FederationError
from federation.store import ApprovalStore, NodeStore

__all__ = [
    "APPROVAL_DOMAIN",
    "ApprovalError",
    "ApprovalQueue",
    "Assessment",
    "assess",
    "generate_operator_key",
    "load_operator_key",
    "operator_public_key",
    "request_shape",
]

log = structlog.get_logger("accord.approvals")

#: domain-separation prefix of the bytes an operator signs
APPROVAL_DOMAIN = b"accord-approval-decision-v1\n"
#: the decision document's type
DECISION_TYPE = "accord.approval-decision/v1"
#: longest signed decision document kept or parsed, bytes
MAX_DECISION_BYTES = 16_384
#: most ids one signed decision may cover
MAX_BATCH = 100
#: subjects and agents remembered per queue row (what a batch covered), each
MAX_REMEMBERED = 20
#: default cap on decisions an operator signs per hour (``approvals configure``)
DEFAULT_PROMPTS_PER_HOUR = 30
CONFIG_KEY = "approvals:config"

STATUSES = ("pending", "approved", "denied", "expired", "invalid")

REQUESTED = Counter(
    "accord_approval_requests_total", "Requests held for an operator's approval", ["contract", "outcome"]
)
DECIDED = Counter("accord_approval_decisions_total", "Approval queue rows settled", ["decision"])
TIME_TO_DECISION = Histogram(
    "accord_approval_time_to_decision_seconds",
    "Seconds from a request being held to an operator's decision",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
PENDING = Gauge("accord_approval_pending", "Approval queue rows waiting for an operator")
APPROVAL_RATE = Gauge("accord_approval_rate", "Approved share of the rows operators decided (this process)")
_decided_counts = {"approved": 0, "denied": 0}


class ApprovalError(FederationError):
    """An approval refusal or a refused operator action.

    Reasons (status from :mod:`federation.reasons`): ``APPROVAL_PENDING``,
    ``APPROVAL_EXPIRED``, ``APPROVAL_NOT_PENDING`` (FAILED_PRECONDITION);
    ``APPROVAL_DENIED``, ``APPROVAL_SIGNATURE_INVALID``, ``NOT_AN_OPERATOR``
    (PERMISSION_DENIED); ``UNKNOWN_APPROVAL`` (NOT_FOUND);
    ``APPROVER_CAP_REACHED`` (RESOURCE_EXHAUSTED); ``BAD_OPERATOR_KEY``,
    ``OPERATOR_EXISTS``, ``BAD_APPROVAL_BATCH`` (INVALID_ARGUMENT).
    ``metadata`` carries ``approval_id`` and, where it applies, ``expires_at``,
    ``risk_reason`` or ``cap``.
    """

    reason = "APPROVAL_PENDING"
    status = "FAILED_PRECONDITION"
    caller_fault = True


# ---------------------------------------------------------------- operator keys


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_operator_key() -> tuple[bytes, str]:
    """A new operator keypair: (PKCS#8 PEM private key, base64url 32-byte Ed25519 public key)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, operator_public_key(key)


def operator_public_key(key: Ed25519PrivateKey) -> str:
    """The base64url (no padding) raw 32-byte public key of an operator's private key."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64url(raw)


def load_operator_key(pem: bytes) -> Ed25519PrivateKey:
    """Parse an operator's PKCS#8 PEM Ed25519 private key.

    Raises:
        ApprovalError: ``BAD_OPERATOR_KEY`` if it is not an unencrypted Ed25519 PKCS#8 PEM key.
    """
    try:
        key = serialization.load_pem_private_key(pem[:8192], password=None)
    except (ValueError, TypeError) as exc:
        raise ApprovalError(f"not an operator key: {exc}", reason="BAD_OPERATOR_KEY") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ApprovalError("an operator key must be Ed25519", reason="BAD_OPERATOR_KEY")
    return key


def check_public_key(text: str) -> str:
    """Validate a base64url raw Ed25519 public key; returns it.

    Raises:
        ApprovalError: ``BAD_OPERATOR_KEY`` if it does not decode to 32 bytes.
    """
    try:
        raw = _unb64url(text.strip()) if len(text) <= 64 else b""
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32 or _b64url(raw) != text.strip():
        raise ApprovalError(
            "an operator public key is base64url of 32 bytes (accord approvals operator-keygen)",
            reason="BAD_OPERATOR_KEY",
        )
    return text.strip()


# ---------------------------------------------------------------- the rule and the risk


@dataclass(frozen=True)
class Assessment:
    """Why a request needs approval and how risky it is.

    Attributes:
        rule: the conditions met, e.g. ``"fields:allergies;below_trust:0.6"``.
        risk: in [0, 1]; the queue lists the highest first.
        reason: one line for the operator, e.g.
            ``"releases allergies (sensitivity 2) beyond MNI; τ 0.45 < 0.6"``.
    """

    rule: str
    risk: float
    reason: str


def assess(
    contract: Any,
    *,
    purpose: str,
    released: Iterable[str],
    tau: float,
    budget_used: float,
) -> Assessment | None:
    """Whether an allowed request needs approval under ``contract.approval``; None if not.

    Args:
        contract: a :class:`policy.Contract`.
        purpose: the request's purpose.
        released: the field paths the decision releases.
        tau: the decision's effective trust, in [0, 1].
        budget_used: trust-budget units spent in the window, this request included.

    Returns:
        An :class:`Assessment` (rule met, risk, one-line reason), or None.
    """
    policy = getattr(contract, "approval", None)
    if policy is None:
        return None
    rule = policy.require
    spec = contract.purposes.get(purpose)
    mni = set(spec.mni) if spec is not None else set()
    optional = dict(spec.optional) if spec is not None else {}
    released = sorted(set(released))
    beyond = [f for f in released if f not in mni]
    sensitivity = sum(optional[f].sensitivity for f in beyond if f in optional)
    units = contract.trust_budget.units if contract.trust_budget is not None else 0.0
    fraction = budget_used / units if units else 0.0
    met: list[str] = []
    flagged = sorted(set(rule.fields) & set(released))
    if flagged:
        met.append("fields:" + ",".join(flagged))
    if rule.min_sensitivity is not None and sensitivity >= rule.min_sensitivity:
        met.append(f"min_sensitivity:{rule.min_sensitivity:g}")
    if rule.below_trust is not None and tau < rule.below_trust:
        met.append(f"below_trust:{rule.below_trust:g}")
    if rule.budget_fraction is not None and units and fraction >= rule.budget_fraction:
        met.append(f"budget_fraction:{rule.budget_fraction:g}")
    if purpose in rule.purposes:
        met.append("purpose:" + purpose)
    if not met:
        return None
    reasons: list[str] = []
    if beyond:
        shown = ", ".join(
            f"{f} (sensitivity {optional[f].sensitivity:g})" if f in optional else f for f in beyond[:4]
        )
        reasons.append(f"releases {shown}{' …' if len(beyond) > 4 else ''} beyond MNI")
    elif flagged:
        reasons.append("releases " + ", ".join(flagged[:4]))
    if rule.below_trust is not None and tau < rule.below_trust:
        reasons.append(f"τ {tau:.2f} < {rule.below_trust:g}")
    if units:
        reasons.append(f"budget {fraction:.0%} used")
    if purpose in rule.purposes:
        reasons.append(f"purpose {purpose} needs approval")
    sens_norm = sensitivity / (sensitivity + 2.0) if sensitivity > 0 else 0.0
    risk = 0.45 * sens_norm + 0.3 * (1.0 - max(0.0, min(1.0, tau))) + 0.15 * min(1.0, fraction)
    risk += 0.1 if flagged or purpose in rule.purposes else 0.0
    return Assessment(
        rule=";".join(met)[:300], risk=round(min(1.0, risk), 4), reason="; ".join(reasons)[:300]
    )


def request_shape(
    *,
    requester_org: str,
    contract_id: str,
    contract_hash: str,
    purpose: str,
    resource: str,
    fields: Sequence[str],
) -> str:
    """The batching key of a request: SHA-256 hex of what makes two requests "the same ask".

    The agent and the subject are left out on purpose: one decision covers
    every agent of the requester asking the same fields for the same purpose.
    """
    text = "\n".join(
        [requester_org, contract_id, contract_hash, purpose, resource, ",".join(sorted(set(fields)))]
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------- the queue


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("signed_decision", "signature")}
    for k, v in list(out.items()):
        if isinstance(v, dt.datetime):
            out[k] = rfc3339(v)
    out["signed"] = bool(row.get("signature"))
    return out


class ApprovalQueue:
    """The approval queue of one node (node side and operator side).

    Args:
        store: the node's :class:`federation.store.NodeStore`.
        org_did: this node's organization DID (bound into every signed decision).
    """

    def __init__(self, store: NodeStore, *, org_did: str) -> None:
        self.rows = ApprovalStore(store)
        self.node_store = store
        self.org_did = org_did

    # ------------------------------------------------------------ configuration

    def prompts_per_hour(self) -> int:
        """The cap on decisions one operator signs per hour."""
        cfg = self.node_store.get_state(CONFIG_KEY) or {}
        value = cfg.get("max_prompts_per_operator_hour", DEFAULT_PROMPTS_PER_HOUR)
        return int(value) if isinstance(value, int) and value > 0 else DEFAULT_PROMPTS_PER_HOUR

    def configure(self, *, max_prompts_per_operator_hour: int, now: dt.datetime) -> None:
        """Set the per-operator hourly cap (1..10 000).

        Raises:
            ApprovalError: ``BAD_APPROVAL_BATCH`` if the value is out of range.
        """
        if (
            isinstance(max_prompts_per_operator_hour, bool)
            or not 1 <= max_prompts_per_operator_hour <= 10_000
        ):
            raise ApprovalError("the cap must be 1..10000 decisions per hour", reason="BAD_APPROVAL_BATCH")
        self.node_store.put_state(
            CONFIG_KEY, {"max_prompts_per_operator_hour": int(max_prompts_per_operator_hour)}, now=now
        )

    # ------------------------------------------------------------ operators

    def add_operator(self, name: str, public_key: str, *, now: dt.datetime) -> None:
        """Register an operator (name 1-100 characters of ``[A-Za-z0-9._-]``).

        Raises:
            ApprovalError: ``BAD_OPERATOR_KEY`` for a malformed key or name.
            InvalidRequestError: ``OPERATOR_EXISTS``.
        """
        import re

        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
            raise ApprovalError(f"bad operator name {name[:100]!r}", reason="BAD_OPERATOR_KEY")
        self.rows.add_operator(name, check_public_key(public_key), now=now)

    # ------------------------------------------------------------ node side

    def precheck(self, shape: str, *, now: dt.datetime, agent: str, subject: str) -> dict[str, Any] | None:
        """What the queue says about a request of ``shape`` before the policy decides.

        Returns:
            The approved row whose grant covers ``now`` (the request proceeds), or
            None (no row in effect: decide, then :meth:`hold` if the rule applies).

        Raises:
            ApprovalError: ``APPROVAL_PENDING`` (the row counts this request: batching),
                ``APPROVAL_DENIED`` (while the denial holds), ``APPROVAL_EXPIRED``
                (reported once), ``APPROVAL_SIGNATURE_INVALID`` (a decision no
                registered operator signed: the row is marked ``invalid``).
        """
        row = self.rows.latest_for_shape(shape)
        if row is None:
            return None
        status = row["status"]
        meta = {"approval_id": row["id"]}
        if status == "pending":
            if now >= row["expires_at"]:
                self.rows.update(row["id"], expect_status="pending", status="expired", reported=True)
                REQUESTED.labels(contract=row["contract_id"], outcome="expired").inc()
                raise ApprovalError(
                    f"approval {row['id']} expired before an operator decided",
                    reason="APPROVAL_EXPIRED",
                    metadata={**meta, "expired_at": rfc3339(row["expires_at"])},
                )
            self.rows.update(
                row["id"],
                expect_status="pending",
                requests=row["requests"] + 1,
                subjects=_remember(row["subjects"], subject),
                agents=_remember(row["agents"], agent),
            )
            REQUESTED.labels(contract=row["contract_id"], outcome="batched").inc()
            raise ApprovalError(
                f"waiting for an operator's approval ({row['id']})",
                reason="APPROVAL_PENDING",
                metadata={
                    **meta,
                    "expires_at": rfc3339(row["expires_at"]),
                    "batched": str(row["requests"] + 1),
                },
            )
        if status in ("approved", "denied"):
            try:
                self.verify_decision(row)
            except ApprovalError:
                self.rows.update(row["id"], status="invalid", ledgered=False)
                raise
            if row["grant_until"] is not None and now < row["grant_until"]:
                if status == "approved":
                    return row
                raise ApprovalError(
                    f"an operator denied requests of this shape ({row['id']})",
                    reason="APPROVAL_DENIED",
                    metadata={
                        **meta,
                        "until": rfc3339(row["grant_until"]),
                        "note": (row["note"] or "")[:200],
                    },
                )
            return None
        if status == "expired" and not row["reported"]:
            self.rows.update(row["id"], reported=True)
            raise ApprovalError(
                f"approval {row['id']} expired before an operator decided",
                reason="APPROVAL_EXPIRED",
                metadata={**meta, "expired_at": rfc3339(row["expires_at"])},
            )
        return None  # expired and reported, or invalid: a new request starts a new row

    def hold(
        self,
        *,
        shape: str,
        contract: Any,
        requester_org: str,
        agent: str,
        purpose: str,
        resource: str,
        subject: str,
        fields: Sequence[str],
        assessment: Assessment,
        now: dt.datetime,
    ) -> None:
        """Put an allowed request on hold: a new pending row; always raises ``APPROVAL_PENDING``.

        Raises:
            ApprovalError: ``APPROVAL_PENDING`` with ``approval_id``, ``expires_at`` and ``risk_reason``.
        """
        policy = contract.approval
        approval_id = "apr_" + secrets.token_hex(16)
        expires = now + dt.timedelta(seconds=policy.expires_seconds)
        self.rows.insert(
            dict(
                id=approval_id,
                shape=shape,
                status="pending",
                requester_org=requester_org,
                requester_agent=agent,
                contract_id=contract.id,
                contract_hash=contract.version_hash,
                purpose=purpose,
                resource=resource,
                fields=sorted(set(fields))[:1024],
                rule=assessment.rule,
                risk=assessment.risk,
                risk_reason=assessment.reason,
                requests=1,
                subjects=[subject[:200]],
                agents=[agent[:200]],
                created_at=now,
                expires_at=expires,
                grant_seconds=int(policy.grant_seconds),
                ledgered=False,
                reported=False,
            )
        )
        REQUESTED.labels(contract=contract.id, outcome="held").inc()
        PENDING.set(self.rows.count(status="pending"))
        log.info(
            "request held for approval",
            approval_id=approval_id,
            contract=contract.id,
            risk=assessment.risk,
            reason=assessment.reason,
        )
        raise ApprovalError(
            f"waiting for an operator's approval ({approval_id}): {assessment.reason}",
            reason="APPROVAL_PENDING",
            metadata={
                "approval_id": approval_id,
                "expires_at": rfc3339(expires),
                "risk_reason": assessment.reason,
                "batched": "1",
            },
        )

    def settle(self, *, now: dt.datetime) -> list[dict[str, Any]]:
        """Expire overdue pending rows; return the rows whose outcome is not yet ledgered.

        Each returned row has been verified (a decided row whose signature does
        not verify is returned with status ``invalid``). The caller writes the
        ledger entries, then :meth:`mark_ledgered`. Updates the metrics.
        """
        for approval_id in self.rows.overdue(now=now):
            self.rows.update(approval_id, expect_status="pending", status="expired")
        out: list[dict[str, Any]] = []
        for row in self.rows.unledgered():
            if row["status"] in ("approved", "denied"):
                try:
                    self.verify_decision(row)
                except ApprovalError:
                    self.rows.update(row["id"], status="invalid")
                    row = {**row, "status": "invalid"}
            out.append(row)
        PENDING.set(self.rows.count(status="pending"))
        return out

    def mark_ledgered(self, row: dict[str, Any], *, now: dt.datetime) -> None:
        """Record that ``row``'s outcome is in the ledger; count it in the metrics."""
        self.rows.update(row["id"], ledgered=True)
        status = row["status"]
        DECIDED.labels(decision=status).inc()
        if status in ("approved", "denied") and row["decided_at"] is not None:
            TIME_TO_DECISION.observe(max(0.0, (row["decided_at"] - row["created_at"]).total_seconds()))
            _decided_counts[status] += 1
            total = _decided_counts["approved"] + _decided_counts["denied"]
            APPROVAL_RATE.set(_decided_counts["approved"] / total)

    # ------------------------------------------------------------ operator side (CLI, console)

    def pending(self, *, now: dt.datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Pending rows not yet expired, riskiest first (then oldest), as JSON-ready dicts."""
        rows = [r for r in self.rows.rows(status="pending") if now < r["expires_at"]]
        rows.sort(key=lambda r: (-r["risk"], r["created_at"]))
        return [_public(r) for r in rows[:limit]]

    def list(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Rows of any (or one) status, newest first, as JSON-ready dicts."""
        return [_public(r) for r in self.rows.rows(status=status, limit=limit)]

    def show(self, approval_id: str) -> dict[str, Any]:
        """One row as a JSON-ready dict (with the signed decision, if any).

        Raises:
            ApprovalError: ``UNKNOWN_APPROVAL``.
        """
        row = self.rows.get(approval_id[:64])
        if row is None:
            raise ApprovalError(f"unknown approval {approval_id[:64]!r}", reason="UNKNOWN_APPROVAL")
        out = _public(row)
        out["signed_decision"] = row["signed_decision"]
        return out

    def remaining_prompts(self, operator: str, *, now: dt.datetime) -> int:
        """Decisions ``operator`` may still sign in the hour ending at ``now``."""
        used = self.rows.decisions_by(operator, since=now - dt.timedelta(hours=1))
        return max(0, self.prompts_per_hour() - used)

    def decide(
        self,
        approval_ids: Sequence[str],
        *,
        approve: bool,
        operator: str,
        key: Ed25519PrivateKey,
        note: str = "",
        now: dt.datetime,
    ) -> dict[str, Any]:
        """Sign and record one decision over one or more pending rows (a batch is one prompt).

        Args:
            approval_ids: 1..:data:`MAX_BATCH` ids of pending rows.
            approve: True to approve, False to deny.
            operator: the registered operator's name.
            key: the operator's Ed25519 private key (must match the registered key).
            note: a short reason (at most 200 characters kept).
            now: the decision time.

        Returns:
            ``{"decision", "approval_ids", "operator", "decided_at", "grant_until"}``.

        Raises:
            ApprovalError: ``BAD_APPROVAL_BATCH`` (no ids, too many, repeated);
                ``NOT_AN_OPERATOR`` (unknown or revoked operator, or a key that is
                not the operator's); ``APPROVER_CAP_REACHED``; ``UNKNOWN_APPROVAL``;
                ``APPROVAL_NOT_PENDING`` (decided or expired already).
        """
        ids = [str(i)[:64] for i in approval_ids]
        if not ids or len(ids) > MAX_BATCH or len(set(ids)) != len(ids):
            raise ApprovalError(f"give 1..{MAX_BATCH} distinct approval ids", reason="BAD_APPROVAL_BATCH")
        op = self.rows.operator(operator)
        if op is None or op["revoked"]:
            raise ApprovalError(f"{operator[:100]!r} is not a registered operator", reason="NOT_AN_OPERATOR")
        if operator_public_key(key) != op["public_key"]:
            raise ApprovalError(
                f"the key given is not operator {operator!r}'s registered key", reason="NOT_AN_OPERATOR"
            )
        if self.remaining_prompts(operator, now=now) <= 0:
            raise ApprovalError(
                f"operator {operator!r} reached {self.prompts_per_hour()} decisions this hour",
                reason="APPROVER_CAP_REACHED",
                metadata={"cap": str(self.prompts_per_hour())},
            )
        rows = []
        for i in ids:
            row = self.rows.get(i)
            if row is None:
                raise ApprovalError(
                    f"unknown approval {i!r}", reason="UNKNOWN_APPROVAL", metadata={"approval_id": i}
                )
            if row["status"] != "pending" or now >= row["expires_at"]:
                raise ApprovalError(
                    f"approval {i} is "
                    f"{'expired' if row['status'] == 'pending' else row['status']}, not pending",
                    reason="APPROVAL_NOT_PENDING",
                    metadata={"approval_id": i, "status": row["status"]},
                )
            rows.append(row)
        decision = "approve" if approve else "deny"
        doc = {
            "type": DECISION_TYPE,
            "node": self.org_did,
            "approval_ids": ids,
            "shapes": [r["shape"] for r in rows],
            "decision": decision,
            "operator": operator,
            "decided_at": rfc3339(now),
            "note": note[:200],
        }
        payload = rfc8785.dumps(doc)
        signature = _b64url(key.sign(APPROVAL_DOMAIN + payload))
        grants = []
        for row in rows:
            grant = now + dt.timedelta(seconds=int(row["grant_seconds"]))
            done = self.rows.update(
                row["id"],
                expect_status="pending",
                status="approved" if approve else "denied",
                decided_at=now,
                decided_by=operator,
                note=note[:200],
                signed_decision=payload.decode(),
                signature=signature,
                grant_until=grant,
                ledgered=False,
            )
            if not done:
                raise ApprovalError(
                    f"approval {row['id']} was decided meanwhile",
                    reason="APPROVAL_NOT_PENDING",
                    metadata={"approval_id": row["id"]},
                )
            grants.append(rfc3339(grant))
        return {
            "decision": decision,
            "approval_ids": ids,
            "operator": operator,
            "decided_at": rfc3339(now),
            "grant_until": grants,
        }

    def verify_decision(self, row: dict[str, Any]) -> None:
        """Check a decided row: its signed bytes name it and its outcome; a registered operator signed them.

        Raises:
            ApprovalError: ``APPROVAL_SIGNATURE_INVALID`` naming what does not hold.
        """

        def bad(why: str) -> ApprovalError:
            return ApprovalError(
                f"approval {row['id']}: {why}",
                reason="APPROVAL_SIGNATURE_INVALID",
                metadata={"approval_id": row["id"], "why": why},
            )

        payload = (row.get("signed_decision") or "").encode()
        if not payload or len(payload) > MAX_DECISION_BYTES:
            raise bad("no signed decision")
        try:
            doc = json.loads(payload)
            sig = _unb64url(row.get("signature") or "")
        except (ValueError, TypeError):
            raise bad("malformed signed decision") from None
        if not isinstance(doc, dict) or doc.get("type") != DECISION_TYPE:
            raise bad("not an approval decision")
        want = "approve" if row["status"] == "approved" else "deny"
        ids = doc.get("approval_ids")
        shapes = doc.get("shapes")
        if not isinstance(ids, list) or not isinstance(shapes, list) or row["id"] not in ids:
            raise bad("the signed decision does not name this approval")
        if len(shapes) != len(ids) or shapes[ids.index(row["id"])] != row["shape"]:
            raise bad("the signed decision names another request shape")
        if doc.get("decision") != want or doc.get("node") != self.org_did:
            raise bad(f"the signed decision says {doc.get('decision')!r} at {doc.get('node')!r}")
        if doc.get("operator") != row["decided_by"]:
            raise bad("the signed decision names another operator")
        op = self.rows.operator(str(row["decided_by"] or ""))
        if op is None or op["revoked"]:
            raise bad(f"{row['decided_by']!r} is not a registered operator")
        try:
            Ed25519PublicKey.from_public_bytes(_unb64url(op["public_key"])).verify(
                sig, APPROVAL_DOMAIN + payload
            )
        except (InvalidSignature, ValueError):
            raise bad(f"the signature is not operator {row['decided_by']!r}'s") from None


def _remember(seen: list[str], item: str) -> list[str]:
    if item[:200] in seen or len(seen) >= MAX_REMEMBERED:
        return list(seen)
    return [*seen, item[:200]]


# ---------------------------------------------------------------- the node's hooks (federation.provider)


def queue_for(node: Any) -> ApprovalQueue:
    """The node's :class:`ApprovalQueue` (made on first use)."""
    q = getattr(node, "_approval_queue", None)
    if q is None:
        q = node._approval_queue = ApprovalQueue(node.store, org_did=node.did)
    return q


def _shape_of(node: Any, peer_org: str, request: Any, contract: Any) -> str:
    return request_shape(
        requester_org=peer_org,
        contract_id=contract.id,
        contract_hash=contract.version_hash,
        purpose=request.purpose,
        resource=request.resource,
        fields=request.fields,
    )


async def precheck_request(node: Any, peer_org: str, request: Any, contract: Any, now: dt.datetime) -> str:
    """Before the policy decides: the id of the approval covering this request, or ``""``.

    Only for a contract with an ``approval`` block (otherwise no database work).

    Raises:
        ApprovalError: pending, denied, expired or invalid (see :meth:`ApprovalQueue.precheck`).
    """
    import asyncio

    if contract is None or getattr(contract, "approval", None) is None:
        return ""
    q = queue_for(node)
    row = await asyncio.to_thread(
        q.precheck,
        _shape_of(node, peer_org, request, contract),
        now=now,
        agent=request.agent_did,
        subject=request.subject,
    )
    return "" if row is None else str(row["id"])


async def hold_if_needed(
    node: Any, peer_org: str, request: Any, contract: Any, decision: Any, now: dt.datetime
) -> None:
    """After an allow without a covering approval: hold the request if the contract's rule applies.

    Raises:
        ApprovalError: ``APPROVAL_PENDING`` (a new queue row).
    """
    import asyncio

    if contract is None or getattr(contract, "approval", None) is None or not decision.allow:
        return
    used = 0.0
    if contract.trust_budget is not None:
        used = node.budgets.spent(
            (contract.id, peer_org), window_seconds=contract.trust_budget.window_seconds, now=now
        )
    found = assess(
        contract,
        purpose=request.purpose,
        released=decision.released_fields,
        tau=decision.effective_trust,
        budget_used=used,
    )
    if found is None:
        return
    if decision.budget_spent > 0:  # nothing crosses while it waits: the budget pays only on release
        node.budgets.refund((contract.id, peer_org), decision.budget_spent)
    await asyncio.to_thread(
        queue_for(node).hold,
        shape=_shape_of(node, peer_org, request, contract),
        contract=contract,
        requester_org=peer_org,
        agent=request.agent_did,
        purpose=request.purpose,
        resource=request.resource,
        subject=request.subject,
        fields=request.fields,
        assessment=found,
        now=now,
    )


async def settle_and_ledger(node: Any) -> int:
    """Expire overdue rows, verify decisions, write one ``approval`` ledger entry each; returns how many."""
    import asyncio

    from federation import entries

    q = queue_for(node)
    now = node.clock.now()
    rows = await asyncio.to_thread(q.settle, now=now)
    for row in rows:
        status = row["status"]
        reason = {
            "approved": "APPROVED",
            "denied": "APPROVAL_DENIED",
            "expired": "APPROVAL_EXPIRED",
            "invalid": "APPROVAL_SIGNATURE_INVALID",
        }[status]
        extra = {
            "approval_id": row["id"],
            "shape": row["shape"],
            "requests": str(row["requests"]),
            "risk": f"{row['risk']:.4f}",
            "risk_reason": row["risk_reason"],
            "rule": row["rule"],
        }
        if status in ("approved", "denied"):
            extra.update(
                operator=str(row["decided_by"]),
                decided_at=rfc3339(row["decided_at"]),
                decision_sha256=hashlib.sha256((row["signed_decision"] or "").encode()).hexdigest(),
                signature=str(row["signature"]),
            )
        entry = entries.node_event(
            kind="approval",
            prefix="apr_",
            disclosure_id="apl_" + row["id"][4:],
            provider_org=node.did,
            requester_org=row["requester_org"],
            agent=row["requester_agent"],
            contract_id=row["contract_id"],
            contract_hash=row["contract_hash"],
            purpose=row["purpose"],
            fields=row["fields"][:256],
            reason=reason,
            decision="allow" if status == "approved" else "deny",
            now=now,
            extra=extra,
        )
        await node.writer.write(entry, receipt=False)
        await asyncio.to_thread(q.mark_ledgered, row, now=now)
        log.info("approval settled", approval_id=row["id"], status=status, operator=row.get("decided_by"))
    return len(rows)
