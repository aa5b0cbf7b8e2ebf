"""The console's write actions, each recorded in the ledger before it is acknowledged.

An action is ledgered first (an ``operator_action`` entry naming the action,
its target and the operator: certificate SAN URI or ``loopback``), then
applied with the same functions the CLI uses (``NodeStore.set_status``,
``Contract.retire``), then the running node is asked to reload
(``AdminService.Reload`` with the operator certificate). If applying fails
after the entry was written, the error says so: the ledger then holds an
intent that was not carried out, which an auditor can tell from the
agent's status list or the contract file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from federation import entries
from federation.console.auth import Principal
from federation.console.views import ConsoleData
from ledger import DisclosureEntry

__all__ = ["ACTIONS", "operator_action_entry", "apply_action", "decide_approval", "Approver", "ActionError"]

ACTIONS = {
    "agent.revoke": "AGENT_REVOKED",
    "agent.suspend": "AGENT_SUSPENDED",
    "agent.reinstate": "AGENT_REINSTATED",
    "contract.retire": "CONTRACT_RETIRED",
    "approval.approve": "APPROVAL_APPROVED",
    "approval.deny": "APPROVAL_DENIED",
}
"""Console write actions -> the reason code recorded in their ledger entry."""


class ActionError(Exception):
    """A write action that cannot be done (unknown target, already revoked, …): answered 409/404."""

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def operator_action_entry(
    *,
    org_did: str,
    action: str,
    target: str,
    principal: Principal,
    now: dt.datetime,
    agent_did: str = "",
    contract_id: str = "",
    contract_hash: str = "",
) -> DisclosureEntry:
    """The ``operator_action`` ledger entry for one console write action.

    Both org fields are this node's DID (the action crosses no boundary);
    ``reason`` is the action's code from :data:`ACTIONS`; ``extra`` names the
    action, the target and the actor (bounded to 200 characters each).
    """
    return entries.node_event(
        kind="operator_action",
        prefix="op_",
        provider_org=org_did,
        requester_org=org_did,
        reason=ACTIONS[action],
        now=now,
        agent=agent_did,
        contract_id=contract_id,
        contract_hash=contract_hash,
        decision="allow",
        extra={
            "action": action,
            "target": target[:200],
            "actor": principal.actor[:200],
            "via": principal.via,
        },
    )


def _record(data: ConsoleData, entry: DisclosureEntry) -> int:
    """Append ``entry`` durably; integrate and sign when no other signer races (else the node will)."""
    from ledger import CheckpointConflictError

    try:
        return data.ledger.append_integrated([entry]).results[0].index
    except CheckpointConflictError:  # the running node signed meanwhile: sequence only, it integrates
        return data.ledger.append([entry])[0].index


@dataclass(frozen=True)
class Approver:
    """The operator identity the console signs approval decisions with (``--approver``).

    Attributes:
        name: the operator's name registered in the node (``accord approvals add-operator``).
        key: the operator's Ed25519 private key.
    """

    name: str
    key: Any


def decide_approval(
    data: ConsoleData, *, approval_id: str, approve: bool, principal: Principal, approver: Approver | None
) -> dict[str, Any]:
    """Ledger, then sign and record an approval decision with the console's approver key.

    The node writes its own ``approval`` entry when it settles the decision; the
    console's ``operator_action`` entry names who pressed the button.

    Raises:
        PermissionError: no write role.
        ActionError: no approver configured (409), unknown id (404), or the queue refused
            (its reason: cap reached, not pending, …; 409).
    """
    from federation.approvals import ApprovalError

    if not principal.can_write:
        raise PermissionError("the write role is required")
    if approver is None:
        raise ActionError(
            "this console has no approver key: start it with --approver NAME --approver-key PEM",
            status=409,
            reason="NO_APPROVER",
        )
    q = data.approval_queue()
    try:
        row = q.show(approval_id)
    except ApprovalError as exc:
        raise ActionError(str(exc), status=404, reason=exc.reason) from None
    if row["status"] != "pending":
        raise ActionError(f"approval {row['id']} is {row['status']}", status=409, reason="NOT_PENDING")
    action = "approval.approve" if approve else "approval.deny"
    now = dt.datetime.now(dt.UTC)
    index = _record(
        data,
        operator_action_entry(
            org_did=data.org_did,
            action=action,
            target=row["id"],
            principal=principal,
            now=now,
            contract_id=row["contract_id"],
            contract_hash=row["contract_hash"],
        ),
    )
    try:
        out = q.decide([row["id"]], approve=approve, operator=approver.name, key=approver.key, now=now)
    except ApprovalError as exc:
        raise ActionError(
            f"{exc} (ledger entry {index} records the attempt)", status=409, reason=exc.reason
        ) from None
    return {
        "index": index,
        "message": f"{out['decision']}d {row['id']} as operator {approver.name}",
        "reload": "",
    }


def apply_action(data: ConsoleData, *, action: str, target: str, principal: Principal) -> dict[str, Any]:
    """Ledger then apply one write action; returns ``{"index", "message", "reload"}``.

    Raises:
        PermissionError: the principal lacks the write role (never reached through the app,
            which refuses first; kept so no other caller can skip the check).
        ActionError: unknown action or target (404), or a state that forbids it (409).
    """
    if not principal.can_write:
        raise PermissionError("the write role is required")
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}", status=404, reason="UNKNOWN_ACTION")
    now = dt.datetime.now(dt.UTC)
    if action.startswith("agent."):
        from federation.errors import NotFoundError

        store = data.store()
        try:
            rec = store.agent(target)
        except NotFoundError as exc:
            raise ActionError(f"no agent {target!r}", status=404, reason="UNKNOWN_AGENT") from exc
        if rec.revoked:
            raise ActionError(f"agent {rec.name} is revoked (permanent)", status=409, reason="AGENT_REVOKED")
        bits = {
            "agent.revoke": {"revoked": True},
            "agent.suspend": {"suspended": True},
            "agent.reinstate": {"suspended": False},
        }[action]
        index = _record(
            data,
            operator_action_entry(
                org_did=data.org_did,
                action=action,
                target=rec.name,
                principal=principal,
                now=now,
                agent_did=rec.did,
            ),
        )
        rec = store.set_status(rec.name, **bits)
        state = "revoked" if rec.revoked else "suspended" if rec.suspended else "active"
        message = f"agent {rec.name}: {state} (status list index {rec.status_index})"
    else:
        from policy import Contract

        path = data.identity.paths.contracts / f"{target}.json"
        if "/" in target or not path.is_file():
            raise ActionError(f"no contract {target!r} registered", status=404, reason="UNKNOWN_CONTRACT")
        c = Contract.load(path)
        if c.retired_at is not None:
            raise ActionError(f"contract {c.id} is already retired", status=409, reason="CONTRACT_RETIRED")
        index = _record(
            data,
            operator_action_entry(
                org_did=data.org_did,
                action=action,
                target=c.id,
                principal=principal,
                now=now,
                contract_id=c.id,
                contract_hash=c.version_hash,
            ),
        )
        c.retire(at=now).dump(path)
        message = f"retired {c.id}"
    from federation.cli.common import nudge_running_node

    return {"index": index, "message": message, "reload": nudge_running_node(data.identity.paths.root) or ""}
