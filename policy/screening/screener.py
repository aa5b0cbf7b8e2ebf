"""The screener: detectors loaded once, verdicts cached by digest, work off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from policy.errors import PolicyError
from policy.screening.injection import RULES_VERSION, EmbeddingDetector, rule_hits

__all__ = ["MAX_SCREEN_CHARS", "Screener", "ScreeningUnavailableError", "Verdict", "text_digest"]

#: Longest text analysed, characters; a longer one is flagged ``too_long`` unread (it does not cross).
MAX_SCREEN_CHARS = 16_384
#: Verdicts kept in the LRU cache (each a few hundred bytes).
DEFAULT_CACHE_SIZE = 8192
#: After a detector failed to load, seconds before loading is tried again.
RETRY_SECONDS = 30.0


class ScreeningUnavailableError(PolicyError):
    """A screening detector could not be loaded or failed: the text must not cross (fail closed)."""

    reason = "SCREENING_UNAVAILABLE"
    caller_fault = False


def text_digest(text: str) -> str:
    """Hex SHA-256 of ``text``'s UTF-8 bytes (the cache key, and what a ledger entry may name)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What screening concluded about one text.

    Attributes:
        digest: :func:`text_digest` of the text.
        personal_data: sorted presidio entity types found (empty: none, or detector off).
        injection_rules: names of the injection rules that matched.
        injection_margin: the embedding detector's margin (None when it is off).
        injection: whether the text counts as a prompt injection (any rule, or the embedding flag).
        too_long: longer than :data:`MAX_SCREEN_CHARS` (not analysed; treated as flagged).
        detectors: the detector versions, ``;``-separated (for the ledger entry).
        injection_similarity: cosine similarity to the nearest injection exemplar (None when off).
    """

    digest: str
    personal_data: tuple[str, ...]
    injection_rules: tuple[str, ...]
    injection_margin: float | None
    injection: bool
    too_long: bool
    detectors: str
    injection_similarity: float | None = None

    @property
    def flagged(self) -> bool:
        """Whether anything was found (personal data, injection) or the text was too long."""
        return bool(self.personal_data) or self.injection or self.too_long


class Screener:
    """Screens free text for personal data and prompt injection; thread-safe; caches by digest.

    Args:
        personal_data: run the presidio detector.
        injection_rules: run the rule detector.
        injection_embedding: run the embedding detector.
        cache_size: most verdicts kept (LRU).
        personal_data_factory / embedding_factory: build the detectors
            (default: :class:`~policy.screening.personal_data.PersonalDataDetector`,
            :class:`~policy.screening.injection.EmbeddingDetector`); called once,
            in a worker thread, on first use.

    Raises:
        ValueError: every detector is off (a screener that checks nothing is refused).
    """

    def __init__(
        self,
        *,
        personal_data: bool = True,
        injection_rules: bool = True,
        injection_embedding: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
        personal_data_factory: Callable[[], Any] | None = None,
        embedding_factory: Callable[[], Any] | None = None,
    ) -> None:
        if not (personal_data or injection_rules or injection_embedding):
            raise ValueError("a screener needs at least one detector")
        self._want_pd, self._want_rules, self._want_emb = personal_data, injection_rules, injection_embedding
        self._pd_factory = personal_data_factory or _default_personal_data
        self._emb_factory = embedding_factory or EmbeddingDetector
        self._pd: Any = None
        self._emb: Any = None
        self._failed_at: float | None = None
        self._failure = ""
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._cache: LRUCache[str, Verdict] = LRUCache(maxsize=cache_size)
        self._cache_lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.failures = 0

    # ------------------------------------------------------------ loading

    @property
    def loaded(self) -> bool:
        """Whether every enabled model detector is loaded."""
        return (not self._want_pd or self._pd is not None) and (not self._want_emb or self._emb is not None)

    def load(self) -> None:
        """Load the enabled detectors now (blocking; seconds). Idempotent.

        Raises:
            ScreeningUnavailableError: a detector failed to load (retried after
                :data:`RETRY_SECONDS`; until then this is raised at once).
        """
        if self.loaded:
            return
        with self._load_lock:
            if self.loaded:
                return
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
                raise ScreeningUnavailableError(
                    f"screening unavailable: {self._failure}", metadata={"cause": self._failure[:200]}
                )
            try:
                if self._want_pd and self._pd is None:
                    self._pd = self._pd_factory()
                if self._want_emb and self._emb is None:
                    self._emb = self._emb_factory()
            except Exception as exc:  # noqa: BLE001 - any load failure fails closed
                self._failed_at = time.monotonic()
                self._failure = f"{type(exc).__name__}: {exc}"[:300]
                self.failures += 1
                raise ScreeningUnavailableError(
                    f"screening detector failed to load: {self._failure}",
                    metadata={"cause": self._failure[:200]},
                ) from None
            self._failed_at = None

    @property
    def detectors(self) -> str:
        """Versions of the enabled detectors, ``;``-separated (loaded ones report their package versions)."""
        parts = []
        if self._want_pd:
            parts.append(self._pd.version if self._pd is not None else "presidio-analyzer")
        if self._want_rules:
            parts.append(RULES_VERSION)
        if self._want_emb:
            parts.append(self._emb.version if self._emb is not None else "all-MiniLM-L6-v2")
        return ";".join(parts)

    # ------------------------------------------------------------ screening

    def cached(self, text: str) -> Verdict | None:
        """The cached verdict for ``text``, or None (cheap: one SHA-256 and a dict lookup)."""
        d = text_digest(text)
        with self._cache_lock:
            v = self._cache.get(d)
            if v is not None:
                self.hits += 1
            return v

    def screen(self, text: str) -> Verdict:
        """Screen one text (blocking: call from a worker thread, or use :meth:`screen_many`).

        Raises:
            ScreeningUnavailableError: a detector failed to load or to run.
        """
        return self.screen_batch([text])[0]

    def screen_batch(self, texts: Sequence[str]) -> list[Verdict]:
        """Screen several texts (blocking); cached verdicts are reused, new ones cached.

        Raises:
            ScreeningUnavailableError: a detector failed to load or to run.
        """
        out: list[Verdict | None] = []
        todo: dict[str, str] = {}
        with self._cache_lock:
            for t in texts:
                d = text_digest(t)
                v = self._cache.get(d)
                if v is None:
                    todo.setdefault(d, t)
                else:
                    self.hits += 1
                out.append(v)
        if todo:
            fresh = self._analyse(todo)
            with self._cache_lock:
                for d, v in fresh.items():
                    self._cache[d] = v
                self.misses += len(fresh)
            out = [v if v is not None else fresh[text_digest(t)] for v, t in zip(out, texts, strict=True)]
        return [v for v in out if v is not None]

    async def screen_many(self, texts: Sequence[str]) -> list[Verdict]:
        """Screen texts without blocking the event loop: all cached → answered inline; else one worker thread.

        Raises:
            ScreeningUnavailableError: a detector failed to load or to run, or
                is still loading (an exchange never waits for a model load).
        """
        hits = [self.cached(t) for t in texts]
        if all(v is not None for v in hits):
            return [v for v in hits if v is not None]
        if not self.loaded and self._load_lock.locked():
            # never hold an exchange for the seconds a model load takes: fail closed meanwhile
            self.failures += 1
            raise ScreeningUnavailableError(
                "screening detectors are still loading", metadata={"cause": "loading"}
            )
        return await asyncio.to_thread(self.screen_batch, list(texts))

    def _analyse(self, todo: dict[str, str]) -> dict[str, Verdict]:
        self.load()
        detectors = self.detectors
        out: dict[str, Verdict] = {}
        short = {d: t for d, t in todo.items() if len(t) <= MAX_SCREEN_CHARS}
        for d in todo:
            if d not in short:
                out[d] = Verdict(d, (), (), None, False, True, detectors)
        if not short:
            return out
        keys = list(short)
        try:
            with self._run_lock:  # spaCy pipelines are not documented thread-safe
                pd = [self._pd.detect(short[d]) if self._want_pd else () for d in keys]
                emb = self._emb.scores([short[d] for d in keys]) if self._want_emb else [None] * len(keys)
        except Exception as exc:  # noqa: BLE001 - a detector failing at run time fails closed too
            self.failures += 1
            raise ScreeningUnavailableError(
                f"screening detector failed: {type(exc).__name__}: {exc}"[:300],
                metadata={"cause": type(exc).__name__},
            ) from None
        for d, found, e in zip(keys, pd, emb, strict=True):
            rules = rule_hits(short[d]) if self._want_rules else ()
            emb_flag = e is not None and EmbeddingDetector.flags(*e)
            out[d] = Verdict(
                digest=d,
                personal_data=tuple(found),
                injection_rules=rules,
                injection_margin=round(e[0], 4) if e is not None else None,
                injection=bool(rules) or emb_flag,
                too_long=False,
                detectors=detectors,
                injection_similarity=round(e[1], 4) if e is not None else None,
            )
        return out


def _default_personal_data() -> Any:
    from policy.screening.personal_data import PersonalDataDetector

    return PersonalDataDetector()
