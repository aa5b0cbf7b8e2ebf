"""What a running node renews by itself before it expires: agent credentials and its own TLS certificates.

Driven by ``[renewal]`` in ``node.toml`` (:class:`federation.config.RenewalConfig`);
the server runs :func:`renewal_loop`, which every ``check_interval_seconds``
calls :func:`renew_due` in a worker thread (database work and signatures
stay off the event loop) and then reloads the node when something changed.

* An agent whose AgentCredential expires within ``agents_before_days`` (or
  has already expired) is renewed as by ``accord agent renew``
  (:func:`federation.agents.renew_agent`: same DID, claims and status entry,
  a new credential of ``agent_days``, a new TLS client certificate, the
  wallet rewritten atomically). Revoked agents are never renewed. Each
  renewal is one structured log line (``agent credential renewed``: agent,
  DID, old and new ``validUntil``) and counted in
  ``accord_renewals_total{kind="agent"}``; a failure is logged with its reason
  and retried at the next check.
* The node certificate expiring within ``tls_before_days`` is renewed with
  the operator certificate, as by ``accord node renew-tls``; new
  connections then use it without a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import structlog
from cryptography import x509

from federation.config import RenewalConfig
from federation.identity import NodeIdentity
from federation.paths import NodePaths

log = structlog.get_logger("accord.renewal")

__all__ = ["RenewalReport", "renew_due", "renew_tls_files", "renewal_loop"]


@dataclass
class RenewalReport:
    """What one pass of :func:`renew_due` did.

    Attributes:
        agents: names of the agents renewed.
        failed: agent name → error line, for the ones that could not be renewed.
        tls: True when the node's TLS certificates were renewed.

    """

    agents: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    tls: bool = False

    @property
    def changed(self) -> bool:
        """True when the node must reload."""
        return bool(self.agents) or self.tls


def renew_tls_files(paths: NodePaths, *, days: int, now: dt.datetime | None = None) -> str:
    """Issue new node and operator certificates from the organization CA and write them in ``tls/``.

    The node's pair is replaced first (key, then certificate, each file
    atomically); a running node picks it up at its next reload.

    Returns:
        The new node certificate's ``notAfter`` (RFC 3339 UTC).

    Raises:
        ValueError: ``days`` out of 1..3650.

    """
    from federation.paths import write_private
    from federation.tls import renew_node_certificate

    tls = paths.tls
    ca, ca_key = (tls / "ca.pem").read_bytes(), (tls / "ca.key").read_bytes()
    node_pem, node_key = renew_node_certificate(
        ca_pem=ca, ca_key_pem=ca_key, current_cert_pem=(tls / "node.pem").read_bytes(), days=days, now=now
    )
    op_pem, op_key = renew_node_certificate(
        ca_pem=ca, ca_key_pem=ca_key, current_cert_pem=(tls / "operator.pem").read_bytes(), days=days, now=now
    )
    write_private(tls / "node.key", node_key)
    write_private(tls / "node.pem", node_pem)
    write_private(tls / "operator.key", op_key)
    write_private(tls / "operator.pem", op_pem)
    t = x509.load_pem_x509_certificate(node_pem).not_valid_after_utc
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def renew_due(
    identity: NodeIdentity, *, now: dt.datetime | None = None, renewal: RenewalConfig | None = None
) -> RenewalReport:
    """Renew what ``renewal`` (default ``identity.config.renewal``) says is due at ``now`` (blocking).

    Args:
        identity: the node (its current organization key signs the renewed credentials).
        now: the time to judge expiry by (UTC; default the current time).
        renewal: the ``[renewal]`` settings (a running node passes the ones it last reloaded).

    Returns:
        What was renewed (:class:`RenewalReport`).

    """
    from federation.agents import credential_valid_until, open_store, renew_agent
    from federation.errors import FederationError

    cfg = renewal or identity.config.renewal
    now = now or dt.datetime.now(dt.UTC)
    report = RenewalReport()
    if cfg.agents_before_days > 0:
        horizon = now + dt.timedelta(days=cfg.agents_before_days)
        store = open_store(identity)
        try:
            agents = store.agents()
        finally:
            store.engine.dispose()
        for rec in agents:
            if rec.revoked:
                continue
            until = credential_valid_until(rec.credential)
            if until is None or until > horizon:
                continue
            try:
                wallet = renew_agent(identity, rec.did, valid_days=cfg.agent_days, now=now)
            except FederationError as exc:
                report.failed[rec.name] = f"{exc.reason}: {exc}"
                log.error(
                    "agent credential renewal failed", agent=rec.name, reason=exc.reason, error=str(exc)
                )
                continue
            report.agents.append(rec.name)
            log.info(
                "agent credential renewed",
                agent=rec.name,
                did=rec.did,
                old_valid_until=until.isoformat(),
                new_valid_until=wallet.credential["validUntil"],
            )
    if cfg.tls_before_days > 0:
        cert = x509.load_pem_x509_certificate(identity.tls_pem("node.pem"))
        if cert.not_valid_after_utc <= now + dt.timedelta(days=cfg.tls_before_days):
            until = renew_tls_files(identity.paths, days=cfg.tls_days, now=now)
            report.tls = True
            log.info(
                "node TLS certificates renewed", old_not_after=cert.not_valid_after_utc.isoformat(), new=until
            )
    return report


async def _wait_next_check(node: Any) -> None:
    """Sleep ``[renewal] check_interval_seconds``, as the node's config says *during* the wait.

    The setting is looked at again every second, so a reload (SIGHUP) that
    shortens the interval takes effect at once rather than after the old one.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (left := started + node.config.renewal.check_interval_seconds - loop.time()) > 0:
        await asyncio.sleep(min(left, 1.0))


async def renewal_loop(node: Any) -> None:
    """Run :func:`renew_due` every ``[renewal] check_interval_seconds``; reload the node when it renewed.

    ``[renewal]`` is read from ``node.config`` at every turn: a reload
    (SIGHUP, ``accord peer add``) that changes it applies from the next check.
    """
    from federation.observability import RENEWALS

    while True:
        lease = getattr(node, "lease", None)
        if lease is not None and not lease.holds():  # replicas: one renewer per node, the lease holder
            await _wait_next_check(node)
            continue
        try:
            report = await asyncio.to_thread(renew_due, node.identity, renewal=node.config.renewal)
            if report.agents:
                RENEWALS.labels(kind="agent").inc(len(report.agents))
            if report.tls:
                RENEWALS.labels(kind="tls").inc()
            if report.changed:
                node.reload()
                trust = getattr(node, "tls_trust", None)
                if trust is not None:
                    trust.mark_dirty()
        except Exception as exc:  # noqa: BLE001 - retried at the next check
            log.error("renewal check failed", error=str(exc)[:300])
        await _wait_next_check(node)
