"""Witness trust policies (c2sp.org/tlog-policy): known logs, witnesses and a k-of-n quorum.

A policy is parsed from text (``log``, ``witness``, ``group``, ``quorum`` lines)
or built with :meth:`WitnessPolicy.k_of_n`. Groups nest; names must be defined
before use; ``quorum none`` requires no cosignature. An empty group is refused
(no vacuous truth).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.cosignature import Cosignature, CosignatureVerifier, open_cosignatures
from ledger.errors import (
    InvalidKeyError,
    MalformedPolicyError,
    OriginMismatchError,
    QuorumNotMetError,
)
from ledger.note import NoteVerifier

__all__ = ["WitnessPolicy", "Group", "DEFAULT_MAX_FUTURE_SKEW"]

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
"""Cosignatures timestamped further than this in the future are not counted."""

_MAX_NAMES = 256


@dataclass(frozen=True)
class Group:
    """A witness group: satisfied iff at least ``threshold`` of ``members`` are.

    Attributes:
        name: Group name.
        threshold: k, ``1 <= k <= len(members)``.
        members: Names of witnesses or earlier groups.

    """

    name: str
    threshold: int
    members: tuple[str, ...]


def _split(line: str) -> list[str]:
    return line.replace("\t", " ").split()


@dataclass(frozen=True)
class WitnessPolicy:
    """A c2sp.org/tlog-policy.

    Attributes:
        logs: Trusted log keys (any one may sign a checkpoint).
        witnesses: Witness name -> cosignature verifier.
        groups: Group name -> group, in definition order.
        quorum: Name of the witness or group that must be satisfied, or ``"none"``.
        max_age: If set, cosignatures older than this (relative to ``now``) don't count.

    """

    logs: tuple[NoteVerifier, ...]
    witnesses: Mapping[str, CosignatureVerifier]
    groups: Mapping[str, Group]
    quorum: str
    max_age: timedelta | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def parse(cls, text: str, *, max_age: timedelta | None = None) -> WitnessPolicy:
        r"""Parse a policy file.

        Args:
            text: Policy text (lines separated by ``\n``; ``#`` comments allowed).
            max_age: Optional freshness bound for cosignatures.

        Raises:
            MalformedPolicyError: On unknown keywords, bad vkeys, duplicate keys or
                names, names used before definition, bad thresholds, empty groups,
                a member listed twice, control characters, or not exactly one quorum.

        """
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", errors="surrogateescape")
        if any((ord(c) < 0x20 and c not in "\t\n") or c == "\x7f" for c in text):
            raise MalformedPolicyError("policy contains control characters")
        logs: list[NoteVerifier] = []
        witnesses: dict[str, CosignatureVerifier] = {}
        groups: dict[str, Group] = {}
        quorum: str | None = None
        keys: set[bytes] = set()
        for lineno, raw in enumerate(text.split("\n"), 1):
            words = _split(raw)
            if not words or words[0].startswith("#"):
                continue
            kw, args = words[0], words[1:]

            def bad(msg: str, _lineno: int = lineno) -> MalformedPolicyError:
                return MalformedPolicyError(f"line {_lineno}: {msg}", metadata={"line": _lineno})

            if kw == "log":
                if len(args) not in (1, 2):
                    raise bad("expected 'log <vkey> [<url>]'")
                try:
                    v = NoteVerifier.from_vkey(args[0])
                except InvalidKeyError as exc:
                    raise bad(f"bad log vkey: {exc}") from exc
                if v.public_key in keys:
                    raise bad("duplicate log key")
                keys.add(v.public_key)
                logs.append(v)
            elif kw == "witness":
                if len(args) not in (2, 3):
                    raise bad("expected 'witness <name> <vkey> [<url>]'")
                name = args[0]
                if name == "none" or name in witnesses or name in groups:
                    raise bad(f"name {name!r} is reserved or already defined")
                try:
                    w = CosignatureVerifier.from_vkey(args[1])
                except InvalidKeyError as exc:
                    raise bad(f"bad witness vkey: {exc}") from exc
                if w.public_key in keys:
                    raise bad("duplicate witness key")
                keys.add(w.public_key)
                witnesses[name] = w
            elif kw == "group":
                if len(args) < 3:
                    raise bad("expected 'group <name> all|any|<k> <member>...'")
                name, k_text, members = args[0], args[1], tuple(args[2:])
                if name == "none" or name in witnesses or name in groups:
                    raise bad(f"name {name!r} is reserved or already defined")
                for m in members:
                    if m not in witnesses and m not in groups:
                        raise bad(f"member {m!r} is not defined on an earlier line")
                if len(set(members)) != len(members):
                    raise bad("a member is listed twice")
                if k_text == "all":
                    k = len(members)
                elif k_text == "any":
                    k = 1
                elif k_text.isdigit() and (k_text == "0" or k_text[0] != "0"):
                    k = int(k_text)
                else:
                    raise bad(f"bad threshold {k_text!r}")
                if not 1 <= k <= len(members):
                    raise bad(f"threshold {k} is not in [1, {len(members)}]")
                groups[name] = Group(name, k, members)
            elif kw == "quorum":
                if len(args) != 1:
                    raise bad("expected 'quorum <name>'")
                if quorum is not None:
                    raise bad("more than one quorum line")
                if args[0] != "none" and args[0] not in witnesses and args[0] not in groups:
                    raise bad(f"quorum {args[0]!r} is not defined on an earlier line")
                quorum = args[0]
            else:
                raise bad(f"unknown keyword {kw!r}")
            if len(witnesses) + len(groups) + len(logs) > _MAX_NAMES:
                raise bad("policy is too large")
        if quorum is None:
            raise MalformedPolicyError("policy has no quorum line")
        return cls(tuple(logs), dict(witnesses), dict(groups), quorum, max_age)

    @classmethod
    def k_of_n(
        cls,
        k: int,
        witnesses: Mapping[str, str],
        *,
        logs: Iterable[str] = (),
        max_age: timedelta | None = None,
    ) -> WitnessPolicy:
        """Build "k of these n witnesses" (name -> vkey), optionally with log vkeys.

        Raises:
            MalformedPolicyError: If ``witnesses`` is empty or ``k`` is not in ``[1, n]``.

        """
        lines = [f"log {v}" for v in logs]
        lines += [f"witness {name} {vkey}" for name, vkey in witnesses.items()]
        if not witnesses:
            raise MalformedPolicyError("a k-of-n policy needs at least one witness")
        lines.append(f"group quorum-group {k} {' '.join(witnesses)}")
        lines.append("quorum quorum-group")
        return cls.parse("\n".join(lines) + "\n", max_age=max_age)

    def to_text(self) -> str:
        """Serialise the policy back to tlog-policy text."""
        lines = [f"log {v.vkey}" for v in self.logs]
        lines += [f"witness {n} {w.vkey}" for n, w in self.witnesses.items()]
        for g in self.groups.values():
            k = "all" if g.threshold == len(g.members) and len(g.members) > 1 else str(g.threshold)
            lines.append(f"group {g.name} {k} {' '.join(g.members)}")
        lines.append(f"quorum {self.quorum}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ evaluation
    def satisfied_by(self, names: Iterable[str]) -> bool:
        """Return ``True`` iff witnesses ``names`` (those that cosigned) meet the quorum."""
        if self.quorum == "none":
            return True
        have = set(names)
        memo: dict[str, bool] = {}

        def ok(name: str) -> bool:
            if name in self.witnesses:
                return name in have
            if name not in memo:
                g = self.groups[name]
                memo[name] = sum(ok(m) for m in g.members) >= g.threshold
            return memo[name]

        return ok(self.quorum)

    def counted(
        self, note: str, *, now: datetime | None = None, skew: timedelta = DEFAULT_MAX_FUTURE_SKEW
    ) -> dict[str, Cosignature]:
        """Return witness name -> valid, in-window cosignature found in ``note``.

        Cosignatures in the future (beyond ``skew``) or older than ``max_age`` are
        not counted when ``now`` is given; lines from unknown keys are ignored.

        Raises:
            MalformedNoteError: If the note does not parse.
            InvalidSignatureError: If a known witness's cosignature fails.

        """
        _, cosigs = open_cosignatures(note, self.witnesses.values())
        by_key = {(w.name, w.key_id): n for n, w in self.witnesses.items()}
        out: dict[str, Cosignature] = {}
        for c in cosigs:
            if now is not None:
                ts = now.timestamp()
                if c.timestamp > ts + skew.total_seconds():
                    continue
                if self.max_age is not None and c.timestamp < ts - self.max_age.total_seconds():
                    continue
            out[by_key[(c.name, c.key_id)]] = c
        return out

    def check(self, signed: SignedCheckpoint | str, *, now: datetime | None = None) -> set[str]:
        """Require the checkpoint's cosignatures to meet the quorum.

        Args:
            signed: The cosigned checkpoint (or its note).
            now: Current time for freshness checks (none if omitted).

        Returns:
            Names of the witnesses counted.

        Raises:
            QuorumNotMetError: If the quorum is not met.
            InvalidSignatureError: If a known witness's cosignature fails.

        """
        note = signed.note if isinstance(signed, SignedCheckpoint) else signed
        got = self.counted(note, now=now)
        if not self.satisfied_by(got):
            raise QuorumNotMetError(
                f"witness quorum {self.quorum!r} not met",
                metadata={"quorum": self.quorum, "cosigned_by": ",".join(sorted(got))},
            )
        return set(got)

    def verify_checkpoint(
        self, note: str, *, origin: str | None = None, now: datetime | None = None
    ) -> SignedCheckpoint:
        """Verify a log signature by one of :attr:`logs` and the witness quorum.

        The origin defaults to the signing log key's name (tlog-policy requires the
        log key name to be the origin).

        Raises:
            MalformedPolicyError: If the policy lists no log.
            InvalidSignatureError, OriginMismatchError, QuorumNotMetError: As the checks fail.

        """
        if not self.logs:
            raise MalformedPolicyError("policy lists no log to verify against")
        signed = open_checkpoint(note, self.logs, origin=origin)
        if origin is None:
            names = {v.name for v in self.logs}
            if signed.checkpoint.origin not in names:
                raise OriginMismatchError(
                    "checkpoint origin is not a policy log's name",
                    metadata={"got": signed.checkpoint.origin},
                )
        self.check(signed, now=now)
        return signed
