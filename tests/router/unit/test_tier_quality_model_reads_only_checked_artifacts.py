"""A tier classifier artefact is checked field by field before it scores anything, and the
model it holds scores deterministically: more of a tier's good tokens, higher probability."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tierwise.router.classifier import ClassifierUnavailableError
from tierwise.router.tier_quality import (
    API_VERSION,
    KIND,
    TierQualityModel,
    WordPiece,
    encode_scores,
    load_model,
    parse_artifact,
)

VOCAB = ["[PAD]", "[UNK]", "easy", "hard", "question", "?"]


def small(token_scores: Any, numbers_weight: float = 0.0) -> dict[str, Any]:
    scores = token_scores if isinstance(token_scores, str) else encode_scores(token_scores)
    return {
        "small": {
            "bias": 0.0,
            "lengthWeight": 0.0,
            "numbersWeight": numbers_weight,
            "tokenScores": scores,
        }
    }


def artifact(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "tiers": ["small", "frontier"],
        "threshold": 0.5,
        "embedding": {"model": "all-MiniLM-L6-v2", "tokenizerSha256": "x", "vocabSize": 6},
        "features": {"maxChars": 4096},
        "models": small([0, 0, 2.0, -2.0, 0, 0], numbers_weight=-0.5),
    }
    doc.update(changes)
    return doc


def model(doc: dict[str, Any] | None = None) -> TierQualityModel:
    parsed = parse_artifact(json.dumps(doc or artifact()).encode(), "a.json")
    return TierQualityModel(parsed, WordPiece({w: i for i, w in enumerate(VOCAB)}), "sha")


def test_scores_are_deterministic_probabilities_ordered_by_token_scores() -> None:
    first, second = model(), model()
    easy = first.scores("easy question?")["small"]
    hard = first.scores("hard question?")["small"]
    assert 0.0 < hard < 0.5 < easy < 1.0
    assert first.scores("easy question?") == second.scores("easy question?")
    assert list(first.scores("")) == ["small"]


def test_memory_stays_bounded_on_endless_distinct_prompts() -> None:
    class Small(TierQualityModel):
        CACHE_CHUNKS = 16

    class SmallPieces(WordPiece):
        CACHE_WORDS = 16

    parsed = parse_artifact(json.dumps(artifact()).encode(), "a.json")
    m = Small(parsed, SmallPieces({w: i for i, w in enumerate(VOCAB)}), "sha")
    reference = model()
    for i in range(500):
        text = f"easy question{i} hard{i * 7} 12{i}"
        assert m.scores(text) == reference.scores(text)  # the cache never changes a score
        assert len(m._chunks) <= Small.CACHE_CHUNKS
        assert len(m._tokenize._cache) <= SmallPieces.CACHE_WORDS  # type: ignore[attr-defined]


def test_digits_lower_the_score_through_the_numbers_weight() -> None:
    m = model()
    assert m.scores("question 12 and 40")["small"] < m.scores("question")["small"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{not json", "not JSON"),
        (artifact(kind="Other"), "not a TierQualityModel"),
        (artifact(apiVersion="v0"), "recalibrate"),
        (artifact(tiers=["small"]), "at least two tier names"),
        (artifact(models={}), "models.small is missing"),
        (artifact(threshold="high"), "'threshold' is missing or not float"),
        (
            artifact(embedding={"model": "other-model", "tokenizerSha256": "x", "vocabSize": 6}),
            "is not packaged",
        ),
        (artifact(models=small([0.0] * 5)), "has 5 entries, embedding.vocabSize is 6"),
        (artifact(models=small("***")), "not base64"),
    ],
)
def test_a_bad_artifact_is_refused_naming_the_field(doc: Any, message: str) -> None:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(ClassifierUnavailableError, match=message):
        parse_artifact(data, "a.json")


def test_an_artifact_other_than_the_pinned_one_is_refused() -> None:
    data = json.dumps(artifact()).encode()
    other = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ClassifierUnavailableError, match="the policy pins"):
        load_model(data, "a.json", sha256=other)
