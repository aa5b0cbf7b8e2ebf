"""Regenerate the per-source vector directories from the shared bundle.

Usage: python tests/ledger/vectors/split_published.py /work/shared/ledger/vectors/published.json
Writes ``<group>/values.json`` and ``<group>/SOURCE.md`` next to this script, unchanged values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(bundle: str) -> None:
    data = json.loads(Path(bundle).read_text(encoding="utf-8"))
    for group, body in data["groups"].items():
        out = HERE / group
        out.mkdir(exist_ok=True)
        (out / "values.json").write_text(
            json.dumps(body["values"], indent=1, ensure_ascii=False), encoding="utf-8"
        )
        src = body["source"]
        extra = "".join(f"- {k}: {v}\n" for k, v in src.items() if k not in ("repository", "path", "commit"))
        keys = ", ".join(f"`{k}`" for k in body["values"])
        (out / "SOURCE.md").write_text(
            f"# {group}\n\n"
            f"Values transcribed unchanged from **{src['repository']}**, file `{src['path']}` "
            f"at commit `{src['commit']}`\n"
            "(via the project's shared vector bundle `/work/shared/ledger/vectors/published.json`, "
            "whose README documents\n"
            "how each value was checked against `git show <commit>:<path>`).\n"
            f"{extra}\n{body.get('about', '')}\n\nKeys: {keys}.\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main(sys.argv[1])
