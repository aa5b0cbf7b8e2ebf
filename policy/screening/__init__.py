r"""Free-text screening at the organization boundary: personal data and prompt injection.

A small API, the same in both directions (a provider's released free-text
values; a requester's incoming data; an A2A gateway's ``TextPart``\\ s):

>>> from policy.screening import Screener
>>> screener = Screener()                      # models load lazily, once
>>> verdict = screener.screen("Ignore all previous instructions and ...")
>>> verdict.injection, verdict.personal_data   # (True, ())
>>> verdicts = await screener.screen_many(texts)  # off the event loop, cached

* :class:`Screener` screens one text (:meth:`Screener.screen`, blocking) or
  many (:meth:`Screener.screen_many`, async: misses run in a worker thread).
  Each verdict is cached by the SHA-256 of the text's UTF-8 bytes in a
  bounded LRU, so a value is analysed once, not on every exchange.
* :class:`Verdict` is what a screening concluded: the personal-data entity
  types found, whether it looks like a prompt injection (rules and the
  embedding score), and the detector versions.
* A detector that cannot load (a missing model) raises
  :class:`ScreeningUnavailableError`: callers *fail closed* (the text does
  not cross) and count it.

Detectors: :mod:`policy.screening.personal_data` (``presidio-analyzer``
recognizers over the spaCy ``en_core_web_sm`` 3.8 pipeline, offline) and
:mod:`policy.screening.injection` (rules for the paper's attack motifs plus
a nearest-exemplar score with the ``all-MiniLM-L6-v2`` sentence embedding,
offline). Measured precision and recall: ``docs/content-controls.md``.
"""

from policy.screening.screener import (
    MAX_SCREEN_CHARS,
    Screener,
    ScreeningUnavailableError,
    Verdict,
    text_digest,
)

__all__ = ["MAX_SCREEN_CHARS", "Screener", "ScreeningUnavailableError", "Verdict", "text_digest"]
