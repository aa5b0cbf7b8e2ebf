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
from typing import Any

from federation import entries
from federation.console.auth import Principal
from federation.console.views import ConsoleData
from ledger import DisclosureEntry

__all__ = ["ACTIONS", "operator_action_entry", "apply_action", "ActionError"]

ACTIONS = {
    "agent.revoke": "AGENT_REVOKED",
    "agent.suspend": "AGENT_SUSPENDED",
    "agent.reinstate": "AGENT_REINSTATED",
    "contract.retire": "CONTRACT_RETIRED",
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
