"""An A2A message to an Accord record request, and an Accord result back to an A2A task.

A message to a partner's exposed agent (A2A v1.0 ``Message``) must be:

* at most ``[a2a] max_parts`` parts (``A2A_TOO_MANY_PARTS``), each at most
  ``[a2a] max_part_bytes`` bytes serialized (``A2A_PART_TOO_LARGE``) —
  checked before any part is read;
* exactly one **data part** (``Part.data``), a JSON object
  ``{"subject": str, "fields": [str, ...], "resource": str}`` (``resource``
  may be left out when the skill's purpose names one resource); other keys,
  types or a second data part are ``A2A_MALFORMED_MESSAGE``;
* no file parts (``raw``/``url``: ``A2A_PART_UNSUPPORTED``);
* text parts only where the contract allows free text
  (:func:`screen_free_text`; ``FREE_TEXT_NOT_ALLOWED`` until contracts carry
  field types with a free-text flag);
* for a skill of the partner's card (``metadata.skill``, or the card's only
  skill; ``A2A_UNKNOWN_SKILL``) and, when the skill comes from several
  contracts, ``metadata.contract`` naming one of them;
* asking only for field names of that contract's purpose (MNI plus optional
  fields; ``FIELD_NOT_IN_CONTRACT``) — nothing crosses otherwise.

The answer is a completed A2A ``Task`` whose one artifact holds one data
part ``{"records": [...]}`` (each record's keys are contract field names,
exactly those the provider's MNI gate released) and, in the artifact's
metadata, the ledger evidence: ``accord.disclosureId``,
``accord.receiptVerified``, ``accord.receivedLeafIndex``,
``accord.releasedFields``, ``accord.strippedFields``, ``accord.effectiveTrust``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from a2a.types import Artifact, Message, Part, Task, TaskState, TaskStatus
from google.protobuf import json_format, struct_pb2

from federation.a2a.cards import SkillTerms
from federation.errors import DeniedError, InvalidRequestError

DATA_KEYS = frozenset({"subject", "fields", "resource"})
"""Keys a request's data part may hold."""
MAX_FIELDS = 256
"""Most field names one request may name."""
MAX_NAME_CHARS = 256
"""Longest subject, resource or field name, characters."""


@dataclass(frozen=True)
class RecordAsk:
    """What an A2A message asks for, checked against the contract (crosses as an Accord ``RequestBody``).

    Attributes:
        skill: the skill id = contract purpose.
        contract_id: the contract the request is made under.
        resource / subject: what records.
        fields: requested field names (contract field names, no repeats).
        free_text: the contract's free-text fields among them (answered as text parts).

    """

    skill: str
    contract_id: str
    resource: str
    subject: str
    fields: tuple[str, ...]
    free_text: tuple[str, ...] = ()


def screen_free_text(terms: SkillTerms, text: str) -> None:
    """The free-text hook for a text part the *caller* sends: may it cross under ``terms``?

    Free text crosses only as the value of a contract field typed
    ``free_text: true`` (``content.fields``, docs/content-controls.md), and
    an Accord request carries field *names*, never values: a requester's
    text would be a channel no contract field covers. So a text part in a
    request is refused, and the message says where free text does cross —
    in answers, as the contract's free-text fields, screened at both nodes
    (:func:`completed_task` hands them to the agent as text parts). This is
    the one place to change if requests ever carry a free-text field.

    Raises:
        DeniedError: ``FREE_TEXT_NOT_ALLOWED``.

    """
    where = (
        f"free text crosses only in answers, as its free-text fields {list(terms.free_text)}"
        if terms.free_text
        else "it types no field as free text"
    )
    raise DeniedError(
        f"contract {terms.contract_id}, purpose {terms.purpose}: a request carries no free text "
        f"({len(text)} characters in a text part; {where}); ask with a data part naming contract fields",
        reason="FREE_TEXT_NOT_ALLOWED",
        metadata={"contract_id": terms.contract_id, "purpose": terms.purpose},
    )


def _malformed(msg: str) -> InvalidRequestError:
    return InvalidRequestError(msg, reason="A2A_MALFORMED_MESSAGE")


def _metadata_str(message: Message, key: str) -> str:
    if not message.HasField("metadata") or key not in message.metadata.fields:
        return ""
    v = message.metadata.fields[key]
    if v.WhichOneof("kind") != "string_value" or not 0 < len(v.string_value) <= MAX_NAME_CHARS:
        raise _malformed(f"message metadata {key!r} must be a non-empty string of at most {MAX_NAME_CHARS}")
    return v.string_value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
        raise _malformed(
            f"data part {what!r} must be a non-empty string of at most {MAX_NAME_CHARS} characters"
        )
    return value


def parse_message(
    message: Message,
    *,
    skills: Mapping[str, Sequence[SkillTerms]],
    max_parts: int,
    max_part_bytes: int,
) -> RecordAsk:
    """Check an A2A message addressed to a partner's exposed agent (rules in the module docstring).

    Args:
        message: the parsed A2A message.
        skills: the agent's skills this organization may use: skill id →
            the terms of each contract giving it (from the partner's verified
            card, intersected with the contracts in force here).
        max_parts: most parts (``[a2a] max_parts``).
        max_part_bytes: largest part, bytes serialized (``[a2a] max_part_bytes``).

    Returns:
        The request to send.

    Raises:
        InvalidRequestError: ``A2A_TOO_MANY_PARTS``, ``A2A_PART_TOO_LARGE``,
            ``A2A_PART_UNSUPPORTED``, ``A2A_MALFORMED_MESSAGE``, ``A2A_UNKNOWN_SKILL``.
        DeniedError: ``FREE_TEXT_NOT_ALLOWED``, ``FIELD_NOT_IN_CONTRACT``.

    """
    parts = message.parts
    if len(parts) > max_parts:
        raise InvalidRequestError(
            f"message has {len(parts)} parts, at most {max_parts} accepted", reason="A2A_TOO_MANY_PARTS"
        )
    for i, part in enumerate(parts):  # bounds first, before any part is read
        size = part.ByteSize()
        if size > max_part_bytes:
            raise InvalidRequestError(
                f"part {i} is {size} bytes, at most {max_part_bytes} accepted",
                reason="A2A_PART_TOO_LARGE",
                metadata={"part": str(i), "bytes": str(size), "limit": str(max_part_bytes)},
            )
    skill = _metadata_str(message, "skill")
    if not skill:
        if len(skills) != 1:
            raise InvalidRequestError(
                f"name the skill in message metadata 'skill' (one of {sorted(skills)})",
                reason="A2A_UNKNOWN_SKILL",
            )
        skill = next(iter(skills))
    if skill not in skills:
        raise InvalidRequestError(
            f"unknown skill {skill!r}: this agent offers {sorted(skills)} to this organization",
            reason="A2A_UNKNOWN_SKILL",
            metadata={"skill": skill},
        )
    contract_id = _metadata_str(message, "contract")
    choices = list(skills[skill])
    if contract_id:
        choices = [t for t in choices if t.contract_id == contract_id]
        if not choices:
            raise InvalidRequestError(
                f"skill {skill!r} is not given by contract {contract_id!r}", reason="A2A_UNKNOWN_SKILL"
            )
    if len(choices) != 1:
        raise _malformed(
            f"skill {skill!r} comes from contracts {[t.contract_id for t in choices]}: "
            "name one in metadata 'contract'"
        )
    terms = choices[0]
    data: list[Any] = []
    for part in parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            screen_free_text(terms, part.text)
        elif kind == "data":
            data.append(json_format.MessageToDict(part.data))
        elif kind in ("raw", "url"):
            raise InvalidRequestError(
                f"{kind} (file) parts are not carried; ask with a data part", reason="A2A_PART_UNSUPPORTED"
            )
        else:
            raise _malformed("a part with no content")
    if len(data) != 1:
        raise _malformed(f"expected exactly one data part, got {len(data)}")
    body = data[0]
    if not isinstance(body, dict):
        raise _malformed("the data part must be a JSON object {subject, fields, resource}")
    extra = set(body) - DATA_KEYS
    if extra:
        raise _malformed(f"unknown keys in the data part: {sorted(extra)} (expected {sorted(DATA_KEYS)})")
    subject = _name(body.get("subject"), "subject")
    fields = body.get("fields")
    if not isinstance(fields, list) or not 0 < len(fields) <= MAX_FIELDS:
        raise _malformed(f"data part 'fields' must be a list of 1..{MAX_FIELDS} field names")
    names = tuple(dict.fromkeys(_name(f, "fields[]") for f in fields))
    if "resource" in body:
        resource = _name(body["resource"], "resource")
    elif len(terms.resources) == 1:
        resource = terms.resources[0]
    else:
        raise _malformed(f"name the resource: purpose {skill!r} covers {list(terms.resources)}")
    unknown = [f for f in names if f not in terms.fields]
    if unknown:
        raise DeniedError(
            f"fields {unknown} are not fields of contract {terms.contract_id}, purpose {skill!r} "
            f"(known: {list(terms.fields)})",
            reason="FIELD_NOT_IN_CONTRACT",
            metadata={"fields": ",".join(unknown)[:500]},
        )
    return RecordAsk(
        skill=skill,
        contract_id=terms.contract_id,
        resource=resource,
        subject=subject,
        fields=names,
        free_text=tuple(f for f in names if f in terms.free_text),
    )


def check_reply(records: list[dict[str, Any]], released: Sequence[str]) -> None:
    """The gateway's own check of what comes back: every record key is a released field.

    The provider's MNI gate already released only these; this check keeps
    the A2A answer to them even if a provider misbehaves.

    Raises:
        DeniedError: ``A2A_REPLY_BEYOND_RELEASED`` naming the extra keys.

    """
    allowed = set(released)
    extra = sorted({k for r in records if isinstance(r, dict) for k in r} - allowed)
    if extra or not all(isinstance(r, dict) for r in records):
        raise DeniedError(
            f"the provider's answer holds fields beyond the released set: {extra}",
            reason="A2A_REPLY_BEYOND_RELEASED",
        )


def completed_task(message: Message, ask: RecordAsk, result: Any) -> Task:
    """The completed A2A task for an answered request.

    Free text crosses here, and only here: each value of a field the
    contract types ``free_text: true`` (screened by the provider's and the
    own node's content controls, docs/content-controls.md) is taken out of
    its record and handed over as a **text part** whose metadata names it
    (``accord.field``, ``accord.record``) and carries the own node's verdict
    when it flagged the value (``accord.label``: ``verdict``, ``findings``) —
    text for the agent to treat as untrusted data, never as instructions.
    The data part holds the rest of each record.

    Args:
        message: the caller's message (kept as the task's history).
        ask: what was asked.
        result: the :class:`federation.client.Result` (``content_labels``: the
            own node's labels for flagged or unscreened free text).

    """
    context_id = message.context_id or uuid.uuid4().hex
    labels = {
        (int(lb.record), lb.field): {"verdict": lb.verdict, "findings": list(lb.findings)}
        for lb in getattr(result, "content_labels", ())
    }
    structured: list[Any] = []
    texts: list[Part] = []
    for i, rec in enumerate(result.records):
        if not isinstance(rec, dict) or not ask.free_text:
            structured.append(rec)
            continue
        rest = dict(rec)
        for f in ask.free_text:
            if f in rest:
                value = rest.pop(f)
                meta = struct_pb2.Struct()
                info: dict[str, Any] = {"field": f, "record": i}
                if (i, f) in labels:
                    info["label"] = labels[(i, f)]
                meta.update({"accord": info})
                texts.append(Part(text=value if isinstance(value, str) else str(value), metadata=meta))
        structured.append(rest)
    records = struct_pb2.Value()
    records.struct_value.update({"records": structured})  # JSON values (from the provider's JSON)
    evidence = struct_pb2.Struct()
    evidence.update(
        {
            "accord": {
                "contractId": ask.contract_id,
                "purpose": ask.skill,
                "disclosureId": result.disclosure_id,
                "receiptVerified": bool(result.receipt_verified),
                "receivedLeafIndex": int(result.received_leaf_index),
                "releasedFields": list(result.released_fields),
                "strippedFields": list(result.stripped_fields),
                "effectiveTrust": float(result.effective_trust),
                "contentLabels": [{"record": r, "field": f, **v} for (r, f), v in sorted(labels.items())],
            }
        }
    )
    history = Message()
    history.CopyFrom(message)
    history.context_id = context_id
    return Task(
        id=uuid.uuid4().hex,
        context_id=context_id,
        status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED),
        artifacts=[
            Artifact(
                artifact_id=uuid.uuid4().hex,
                name="records",
                description=f"records released under {ask.contract_id} / {ask.skill}",
                parts=[Part(data=records, media_type="application/json"), *texts],
                metadata=evidence,
            )
        ],
        history=[history],
    )
