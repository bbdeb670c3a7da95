"""Golden files: what ``tierwise render`` prints for each input, reviewed like code.

Regenerate after an intended change with ``TIERWISE_UPDATE_GOLDEN=1 pytest tests/manifests``
and review the diff. Files are compared as parsed YAML, so formatting is free to change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from render_helpers import GOLDEN, input_files, load_md

from tierwise.manifests import render_model_deployment

UPDATE = os.environ.get("TIERWISE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("source", input_files(), ids=lambda p: p.stem)
def test_rendering_matches_the_golden_file(source: Path) -> None:
    objects = render_model_deployment(load_md(source))
    golden = GOLDEN / source.name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        text = yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True, width=100)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with TIERWISE_UPDATE_GOLDEN=1"
    expected = list(yaml.safe_load_all(golden.read_text(encoding="utf-8")))
    assert objects == expected


def test_every_golden_file_has_an_input() -> None:
    inputs = {p.name for p in input_files()}
    orphans = sorted(p.name for p in GOLDEN.glob("*.yaml") if p.name not in inputs)
    assert orphans == []
