"""docs/config-reference.md is generated from the pydantic model and cannot drift from it."""

from __future__ import annotations

from federation.config import NodeConfig, PolicyConfig
from federation.config_reference import DOC_PATH, attribute_docs, generate, main


def test_checked_in_reference_matches_the_model():
    assert DOC_PATH.read_text() == generate(), "run: python -m federation.config_reference"


def test_every_key_is_documented_in_the_model():
    for model in (NodeConfig, PolicyConfig):
        docs = attribute_docs(model)
        missing = [name for name in model.model_fields if not docs.get(name)]
        assert not missing, f"{model.__name__}: no Attributes: entry for {missing}"
        for name in model.model_fields:
            assert f"| `{name}` |" in generate()


def test_check_mode_detects_drift(tmp_path):
    out = tmp_path / "ref.md"
    out.write_text(generate().replace("witness_quorum", "witness_quorom", 1))
    assert main(["--check", "--out", str(out)]) == 1
    assert main(["--out", str(out)]) == 0 and main(["--check", "--out", str(out)]) == 0
