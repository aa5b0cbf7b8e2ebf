"""What each case of the suites checks: the specification section, MUST or SHOULD, the requirement.

One table (:data:`REQUIREMENTS`), case name -> :class:`Requirement`, for
both suites (:mod:`interop_tests.cases`, :mod:`interop_tests.security`).
``section`` is a heading anchor in ``docs/`` (``docs/protocol.md`` and the
pages it defers to for credentials, contracts, trust, the ledger and the
auditor); ``level`` follows RFC 2119 (a MUST failure fails the run, a SHOULD
failure is reported); ``requirement`` is the numbered requirement of the
specification (``docs/spec/``, e.g. ``R-SIG-1``) once it exists — None until
then, and the reports say so. A test checks that every case of both suites
has an entry and that every anchor names a heading that exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD"]


@dataclass(frozen=True)
class Requirement:
    """What one case checks.

    Attributes:
        section: ``docs/<page>.md#<anchor>`` (GitHub heading anchor, :func:`anchor`).
        level: ``"MUST"`` or ``"SHOULD"`` (RFC 2119).
        requirement: numbered requirement id of the specification, or None.

    """

    section: str
    level: Level
    requirement: str | None = None


P = "docs/protocol.md"
CRED = "docs/credentials.md"
CON = "docs/contracts.md"
LEDGER = "docs/ledger.md"
TRUST = "docs/trust.md"
AUDIT = "docs/auditing.md"


def _r(section: str, level: Level = "MUST") -> Requirement:
    return Requirement(section, level)


REQUIREMENTS: dict[str, Requirement] = {
    # conformance (interop_tests.cases)
    "handshake": _r(f"{P}#services"),
    "refused unknown peer": _r(f"{P}#transport"),
    "refused foreign CA": _r(f"{P}#transport"),
    "refused tampered credential": _r(f"{CRED}#verification"),
    "refused wrong domain": _r(f"{CRED}#verification"),
    "refused revoked credential": _r(f"{CRED}#bitstring-status-list"),
    "refused suspended credential": _r(f"{CRED}#bitstring-status-list"),
    "refused expired credential": _r(f"{CRED}#verification"),
    "contract allow": _r(f"{CON}#3-decisions"),
    "contract deny": _r(f"{CON}#3-decisions"),
    "unknown contract": _r(f"{P}#errors"),
    "MNI redaction": _r(f"{CON}#3-decisions"),
    "unsigned contract refused": _r(f"{CON}#2-version-hash-and-signatures"),
    "budget exhaustion falls back to MNI": _r(f"{TRUST}#2-trust-budget-and-rate-counter"),
    "receipt present": _r(f"{LEDGER}#formats-all-standard-no-invented-encodings"),
    "peer checkpoints consistent": _r(f"{LEDGER}#formats-all-standard-no-invented-encodings"),
    "witness refuses a rollback": _r(f"{LEDGER}#witnessing"),
    "equivocation detected": _r(f"{LEDGER}#witnessing"),
    "replay refused": _r(f"{P}#signatures"),
    "bad agent signature": _r(f"{P}#signatures"),
    "malformed request": _r(f"{P}#errors"),
    "benign aggregate answered": _r(f"{P}#aggregate-queries"),
    "differencing attack denied": _r(f"{AUDIT}#how-it-decides"),
    "split attack denied (org scope)": _r(f"{AUDIT}#scopes-whose-answers-are-pooled"),
    # security (interop_tests.security)
    "sessions do not raise trust": _r(f"{TRUST}#the-update-rule", "SHOULD"),
    "field above trust withheld": _r(f"{TRUST}#1-effective-trust-τ"),
    "purpose beyond the agent's scopes refused": _r(f"{CON}#3-decisions"),
    "inline @context refused": _r(f"{CRED}#accords-context"),
    "oversized presentation refused fast": _r(f"{CRED}#bounds-before-any-json-ld-work"),
    "deeply nested presentation refused fast": _r(f"{CRED}#bounds-before-any-json-ld-work"),
    "control characters in identifiers": _r(f"{P}#identifiers"),
    "resource outside the contract": _r(f"{CON}#3-decisions"),
    "id sets capped in every spelling": _r(f"{AUDIT}#max_ids-one-cap-for-every-spelling-of-an-id-set"),
    "anonymous entry tiles refused": _r(f"{LEDGER}#who-may-read-what"),
    "session flood bounded": _r(f"{P}#bounds-on-work-before-an-agent-is-authenticated", "SHOULD"),
    "challenge flood bounded": _r(f"{P}#bounds-on-work-before-an-agent-is-authenticated", "SHOULD"),
}


def requirement_for(case: str) -> Requirement:
    """The requirement a case checks.

    Raises:
        KeyError: a case with no entry (a test keeps the table complete).

    """
    return REQUIREMENTS[case]


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")
