"""Prometheus metrics and structured logging of the node.

Metrics are exported with ``prometheus_client`` on ``metrics_port``
(127.0.0.1) when it is non-zero, at ``/metrics``, beside ``/healthz`` and
``/readyz`` (:mod:`federation.health`). Names follow Prometheus conventions
(``accord_`` prefix, ``_total`` counters, ``_seconds`` histograms).

Logs are structlog lines on stderr (key=value, or JSON with ``--json-logs``):
one ``exchange`` line per decided request (:func:`log_exchange`), one
``witnessing failed`` line per witnessing failure
(:mod:`federation.witnessing`).
"""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import Counter, Gauge, Histogram

EXCHANGES = Counter("accord_exchanges_total", "Requests decided as provider", ["peer", "decision"])
EXCHANGE_SECONDS = Histogram(
    "accord_exchange_seconds",
    "Provider-side time per exchange, seconds",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
SESSIONS_OPENED = Counter("accord_sessions_opened_total", "Sessions opened (VP verified)", ["peer"])
REFUSED = Counter("accord_refused_total", "RPCs refused before a decision", ["reason"])
RENEWALS = Counter(
    "accord_renewals_total", "Credentials the node renewed by itself (federation.renewal)", ["kind"]
)
FIELDS_STRIPPED = Counter(
    "accord_fields_stripped_total", "Fields stripped by the MNI gate", ["peer", "field"]
)
_LABELS = ["peer", "contract", "purpose"]
DISCLOSURES = Counter("accord_disclosures_total", "Released disclosures (allowed record requests)", _LABELS)
OFFERED_BEYOND_MNI = Counter(
    "accord_offered_beyond_mni_total",
    "Released disclosures whose source offered a field beyond the purpose's MNI (attempted OER numerator)",
    _LABELS,
)
RELEASED_BEYOND_MNI = Counter(
    "accord_released_beyond_mni_total",
    "Released disclosures carrying a field beyond the purpose's MNI (OER numerator)",
    _LABELS,
)
OER = Gauge(
    "accord_oer_ratio",
    "Over-Exposure Rate since start: beyond-MNI disclosures / disclosures "
    "(stage=offered is attempted OER before the gate, stage=released after it); per window: "
    "rate(accord_released_beyond_mni_total[w]) / rate(accord_disclosures_total[w])",
    [*_LABELS, "stage"],
)
POLICY_ENGINE_FAILURES = Counter(
    "accord_policy_engine_failures_total", "Decisions denied because the engine failed (ENGINE_ERROR)"
)
AUDIT_DENIALS = Counter(
    "accord_audit_denials_total", "Aggregate queries refused by the auditor", ["dataset", "reason"]
)
EQUIVOCATIONS = Gauge("accord_equivocations", "Equivocation evidence held (own log and witnessed logs)")
LEDGER_SIZE = Gauge("accord_ledger_size_entries", "Entries sequenced in this node's ledger")
CHECKPOINT_SIZE = Gauge(
    "accord_ledger_checkpoint_size_entries", "Tree size of this node's latest signed checkpoint"
)
WITNESSED_SIZE = Gauge(
    "accord_ledger_witnessed_size_entries",
    "Tree size of this node's latest checkpoint cosigned by a witness quorum (lag = checkpoint - witnessed)",
)
WITNESS_FAILURES = Counter(
    "accord_witness_failures_total",
    "Failed attempts to have a witness cosign this node's checkpoint",
    ["witness"],
)


EXCHANGE_KINDS = frozenset({"disclosure", "denial", "received"})
"""Ledger entry kinds that record one exchange (provider decision, or the requester's record of it)."""

_entry_log = structlog.get_logger("accord.exchange")


def log_entry(entry: object, *, index: int) -> None:
    """Log one line for a ledger entry just made durable: ``exchange`` for an exchange, else ``ledger entry``.

    Fields: ``kind``, ``decision``, ``reason``, ``counterpart`` (the other
    organization's DID: the requester for ``disclosure``/``denial``, the
    provider for ``received``), ``contract``, ``purpose``, ``agent`` (the
    requesting agent's DID), ``fields_released`` (names only, never values),
    ``leaf_index`` and ``disclosure_id``. Called once per appended entry by
    :class:`federation.ledger_writer.LedgerWriter` (duplicates are not logged again).
    """
    kind = getattr(entry, "kind", "")
    counterpart = entry.provider_org if kind == "received" else entry.requester_org  # type: ignore[attr-defined]
    _entry_log.info(
        "exchange" if kind in EXCHANGE_KINDS else "ledger entry",
        kind=kind,
        decision=getattr(entry, "decision", ""),
        reason=str(getattr(entry, "reason", ""))[:200],
        counterpart=counterpart,
        contract=getattr(entry, "contract_id", ""),
        purpose=getattr(entry, "purpose", ""),
        agent=getattr(entry, "requester_agent", ""),
        fields_released=list(getattr(entry, "fields_released", []) or [])[:64],
        leaf_index=index,
        disclosure_id=getattr(entry, "disclosure_id", ""),
    )


class _CurrentStderr:
    """A file that writes to whatever ``sys.stderr`` is at the time of the write.

    Loggers are cached on first use; a file object captured at configuration
    time (a test's capture, a closed stream) would outlive its owner.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, json_logs: bool = False, level: int = logging.INFO) -> None:
    """Route structlog to stderr (key=value, or JSON lines).

    Tracebacks are rendered plain: never with local variables (a rich
    traceback with locals would copy a hostile request or presentation into
    the log, and render it for seconds on the event loop).
    """
    renderer = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if json_logs else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=True,
    )


def tracing_configured() -> bool:
    """True when an OpenTelemetry tracer provider is set up in this process (spans are recorded).

    Accord sets none up; the ``mcp`` and ``a2a-sdk`` libraries wrap every call
    in a span anyway, which without a provider records nothing and only costs
    time, so the adapters drop that wrapping unless this is true (e.g. under
    ``opentelemetry-instrument``).
    """
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
