"""The organization's shareable records, as a provider's source offers them.

``data/<resource>.json`` holds ``{"records": {"<subject>": {…}, …}}``. The
source offers whole records — everything it has — so that the MNI gate,
not the source, decides what crosses (attempted over-exposure is measured
from what the source offered).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from federation.errors import InvalidRequestError, NotFoundError


class DataSource:
    """Records per resource, loaded from a node's ``data/`` directory."""

    def __init__(self, resources: dict[str, dict[str, dict[str, Any]]]) -> None:
        self._resources = resources

    @classmethod
    def load(cls, directory: Path) -> DataSource:
        """Load every ``*.json`` resource file.

        Raises:
            InvalidRequestError: reason ``BAD_DATASET`` for a malformed file.

        """
        resources: dict[str, dict[str, dict[str, Any]]] = {}
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                try:
                    doc = json.loads(path.read_text())
                    records = doc["records"]
                    if not isinstance(records, dict):
                        raise TypeError("records must be an object")
                except (ValueError, KeyError, TypeError) as exc:
                    raise InvalidRequestError(f"{path}: {exc}", reason="BAD_DATASET") from exc
                resources[path.stem] = records
        return cls(resources)

    def resources(self) -> list[str]:
        """Names of the resources."""
        return sorted(self._resources)

    def fields(self, resource: str) -> set[str]:
        """Top-level field names present in a resource's records."""
        out: set[str] = set()
        for rec in self._resources.get(resource, {}).values():
            out.update(rec)
        return out

    def offer(self, resource: str, subject: str, *, max_records: int = 100) -> list[dict[str, Any]]:
        """What the source offers for a request: whole records.

        Args:
            resource: resource name.
            subject: a record key, or ``"*"`` for all records (at most ``max_records``).
            max_records: cap for ``"*"``.

        Raises:
            NotFoundError: ``UNKNOWN_RESOURCE`` or ``UNKNOWN_SUBJECT``.

        """
        records = self._resources.get(resource)
        if records is None:
            raise NotFoundError(f"unknown resource {resource!r}", reason="UNKNOWN_RESOURCE")
        if subject == "*":
            return [dict(r) for _, r in sorted(records.items())[:max_records]]
        rec = records.get(subject)
        if rec is None:
            raise NotFoundError(f"unknown subject {subject!r} in {resource!r}", reason="UNKNOWN_SUBJECT")
        return [dict(rec)]
