"""What each case of the suites checks: the specification section, MUST or SHOULD, the requirement.

One table (:data:`REQUIREMENTS`), case name -> :class:`Requirement`, for
both suites (:mod:`interop_tests.cases`, :mod:`interop_tests.security`).
``section`` is a heading anchor in ``docs/``: the numbered specification
(``docs/spec/accord-v1.md``) where it states the requirement, else
``docs/protocol.md`` and the pages it defers to for credentials, contracts,
trust, the ledger and the auditor; ``level`` follows RFC 2119 (a MUST
failure fails the run, a SHOULD failure is reported); ``requirements`` are
the specification's numbered requirements the case checks (its §9
conformance table), empty where the specification does not number them
yet. A test checks that every case of both suites has an entry, that every
anchor names a heading that exists and every requirement id is defined in
the specification.
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
        requirements: numbered requirement ids of the specification (``R-SIG-1``, …), or ().

    """

    section: str
    level: Level
    requirements: tuple[str, ...] = ()


SPEC = "docs/spec/accord-v1.md"
P = "docs/protocol.md"
CRED = "docs/credentials.md"
CON = "docs/contracts.md"
LEDGER = "docs/ledger.md"
TRUST = "docs/trust.md"
AUDIT = "docs/auditing.md"


def _r(section: str, level: Level = "MUST", *requirements: str) -> Requirement:
    return Requirement(section, level, tuple(requirements))


REQUIREMENTS: dict[str, Requirement] = {
    # conformance (interop_tests.cases)
    "handshake": _r(f"{SPEC}#5-negotiation", "MUST", "R-NEG-1"),
    "refused unknown peer": _r(f"{SPEC}#2-roles-and-transport", "MUST", "R-TRN-2"),
    "refused foreign CA": _r(f"{SPEC}#2-roles-and-transport", "MUST", "R-TRN-2"),
    "refused tampered credential": _r(f"{CRED}#verification", "MUST", "R-SES-3"),
    "refused wrong domain": _r(f"{CRED}#verification", "MUST", "R-SES-3"),
    "refused revoked credential": _r(f"{CRED}#bitstring-status-list", "MUST", "R-ROL-1", "R-SES-3"),
    "refused suspended credential": _r(f"{CRED}#bitstring-status-list", "MUST", "R-ROL-1", "R-SES-3"),
    "refused expired credential": _r(f"{CRED}#verification", "MUST", "R-SES-3"),
    "contract allow": _r(f"{CON}#3-decisions"),
    "contract deny": _r(f"{CON}#3-decisions", "MUST", "R-RCP-6"),
    "unknown contract": _r(f"{P}#errors"),
    "MNI redaction": _r(f"{CON}#3-decisions"),
    "unsigned contract refused": _r(f"{CON}#2-version-hash-and-signatures"),
    "budget exhaustion falls back to MNI": _r(f"{TRUST}#2-trust-budget-and-rate-counter"),
    "receipt present": _r(f"{LEDGER}#formats-all-standard-no-invented-encodings", "MUST", "R-RCP-2"),
    "peer checkpoints consistent": _r(
        f"{LEDGER}#formats-all-standard-no-invented-encodings", "MUST", "R-RCP-4"
    ),
    "witness refuses a rollback": _r(f"{LEDGER}#witnessing", "MUST", "R-ROL-2"),
    "equivocation detected": _r(f"{LEDGER}#witnessing", "MUST", "R-ROL-2"),
    "replay refused": _r(f"{SPEC}#3-messages", "MUST", "R-MSG-3", "R-EXC-3"),
    "bad agent signature": _r(f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-6"),
    "malformed request": _r(f"{SPEC}#3-messages", "MUST", "R-MSG-2"),
    "benign aggregate answered": _r(f"{P}#aggregate-queries", "MUST", "R-AGG-1"),
    "differencing attack denied": _r(f"{AUDIT}#how-it-decides"),
    "split attack denied (org scope)": _r(f"{AUDIT}#scopes-whose-answers-are-pooled"),
    # security (interop_tests.security)
    "sessions do not raise trust": _r(f"{TRUST}#the-update-rule", "SHOULD"),
    "field above trust withheld": _r(f"{TRUST}#1-effective-trust-τ"),
    "purpose beyond the agent's scopes refused": _r(f"{CON}#3-decisions"),
    "inline @context refused": _r(f"{CRED}#accords-context"),
    "oversized presentation refused fast": _r(f"{CRED}#bounds-before-any-json-ld-work"),
    "deeply nested presentation refused fast": _r(f"{CRED}#bounds-before-any-json-ld-work"),
    "control characters in identifiers": _r(f"{SPEC}#3-messages", "MUST", "R-MSG-1"),
    "resource outside the contract": _r(f"{CON}#3-decisions"),
    "id sets capped in every spelling": _r(f"{AUDIT}#max_ids-one-cap-for-every-spelling-of-an-id-set"),
    "cross-type signatures refused": _r(f"{SPEC}#42-payload-types", "MUST", "R-SIG-3", "R-SIG-6"),
    "signed payload hygiene": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order",
        "MUST",
        "R-SIG-2",
        "R-SIG-4",
        "R-SIG-5",
        "R-NEG-4",
    ),
    "signed bytes verified as sent": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-1", "R-SIG-7"
    ),
    "anonymous entry tiles refused": _r(f"{LEDGER}#who-may-read-what"),
    "session flood bounded": _r(f"{P}#bounds-on-work-before-an-agent-is-authenticated", "SHOULD"),
    "challenge flood bounded": _r(f"{P}#bounds-on-work-before-an-agent-is-authenticated", "SHOULD"),
    # named by requirement (interop_tests.spec_cases), conformance suite
    "R-TRN-1 call without a client certificate": _r(f"{SPEC}#2-roles-and-transport", "MUST", "R-TRN-1"),
    "R-TRN-3 one ErrorInfo per refusal": _r(f"{SPEC}#2-roles-and-transport", "MUST", "R-TRN-3"),
    "R-ROL-1 status lists served": _r(f"{SPEC}#22-what-a-requester-only-node-serves", "MUST", "R-ROL-1"),
    "R-MSG-3 stale timestamp refused": _r(f"{SPEC}#31-signed-messages", "MUST", "R-MSG-3"),
    "R-SIG-2 payload of another version refused": _r(
        f"{SPEC}#42-payload-types", "MUST", "R-SIG-2", "R-NEG-4"
    ),
    "R-SIG-3 payload type checked": _r(f"{SPEC}#42-payload-types", "MUST", "R-SIG-3"),
    "R-SIG-4 signature before parse": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-4"
    ),
    "R-SIG-5 unknown fields in signed payloads": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-5", "R-EXT-2"
    ),
    "R-SIG-6 pinned organization key only": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-6"
    ),
    "R-SIG-8 payload bounded first": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-8"
    ),
    "R-SIG-10 receiver order": _r(f"{SPEC}#44-receiving-a-signed-payload-receiver-order", "MUST", "R-SIG-10"),
    "R-EXC-1 requester mismatch refused": _r(
        f"{SPEC}#45-where-each-signed-payload-is-checked", "MUST", "R-EXC-1"
    ),
    "R-EXC-2 session id signed in the envelope": _r(
        f"{SPEC}#45-where-each-signed-payload-is-checked", "MUST", "R-EXC-2"
    ),
    "R-EXC-3 request bound to session and provider": _r(
        f"{SPEC}#45-where-each-signed-payload-is-checked", "MUST", "R-EXC-3"
    ),
    "R-SES-3 challenge single use, holder's key": _r(f"{SPEC}#71-session", "MUST", "R-SES-3"),
    "R-RCP-6 denial carries its receipt": _r(f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-6"),
    "R-RCP-3 response digest over the bytes sent": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-3"
    ),
    "R-AGG-1 aggregate answer shape": _r(f"{SPEC}#72-exchange", "MUST", "R-AGG-1"),
    "R-EXT-3 unknown fields of unsigned messages ignored": _r(f"{SPEC}#6-extension-rules", "MUST", "R-EXT-3"),
    # requester role (interop_tests.requester_cases): the kit is the provider
    "R-TRN-4 server certificate from another CA": _r(
        f"{SPEC}#21-server-authentication-the-clients-side-of-mtls", "MUST", "R-TRN-4"
    ),
    "R-NEG-3 peer it cannot speak with refused": _r(f"{SPEC}#5-negotiation", "MUST", "R-NEG-2", "R-NEG-3"),
    "R-SES-1 proof of possession checked": _r(
        f"{SPEC}#45-where-each-signed-payload-is-checked", "MUST", "R-SES-1"
    ),
    "R-SES-2 presentation forwarded as sent": _r(f"{SPEC}#47-other-signed-objects", "MUST", "R-SES-2"),
    "R-SIG-1 envelope signed as a provider checks it": _r(
        f"{SPEC}#45-where-each-signed-payload-is-checked", "MUST", "R-SIG-1", "R-EXC-1", "R-EXC-2", "R-SIG-11"
    ),
    "R-SIG-9 request forwarded byte for byte": _r(
        f"{SPEC}#43-producing-a-signed-payload", "MUST", "R-SIG-9", "R-SIG-7", "R-SIG-5"
    ),
    "R-SIG-10 agent request checked in order": _r(
        f"{SPEC}#44-receiving-a-signed-payload-receiver-order",
        "MUST",
        "R-SIG-2",
        "R-SIG-3",
        "R-SIG-4",
        "R-SIG-5",
        "R-SIG-6",
        "R-SIG-8",
        "R-SIG-10",
    ),
    "R-RCP-5 honest receipt recorded": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-2", "R-RCP-5"
    ),
    "R-RCP-2 checkpoint not signed by the log key": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-2", "R-RCP-5"
    ),
    "R-EXT-3 unknown fields of NodeInfo and Outcome ignored": _r(
        f"{SPEC}#6-extension-rules", "MUST", "R-EXT-3"
    ),
    "R-RCP-2 entry not in the signed tree": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-2"
    ),
    "R-RCP-3 re-spelled payload refused": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-3", "R-AGG-1"
    ),
    "R-RCP-3 payload other than the logged one": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-3"
    ),
    "R-RCP-3 entry of another kind": _r(f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-3"),
    "R-RCP-1 oversize outcome refused": _r(f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-1"),
    "R-RCP-7 denial receipt checked": _r(f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-7"),
    "R-RCP-7 entry_b64 decoded strictly": _r(f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-7"),
    "R-RCP-4 equivocating provider": _r(
        f"{SPEC}#73-receipt-verification-requester", "MUST", "R-RCP-4", "R-WIT-5"
    ),
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
