"""The embedding classifier: nearest example, threshold, bounded cache, real model."""

from __future__ import annotations

import pytest

from tierwise.api.routing_policy import ClassifierSpec
from tierwise.router.classifier import (
    ClassifierUnavailableError,
    EmbeddingClassifier,
    HashingEmbedder,
    make_classifier,
)

SPEC = ClassifierSpec.model_validate(
    {
        "categories": [
            {
                "name": "math",
                "examples": [
                    "prove the theorem about prime numbers",
                    "solve the integral equation",
                ],
            },
            {
                "name": "code",
                "examples": ["fix the python function stack trace", "refactor this java class"],
            },
            {"name": "french", "examples": ["démontrez que la racine carrée est irrationnelle"]},
        ],
        "threshold": 0.3,
    }
)


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(256)
        self.calls = 0

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().embed(texts)


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("please prove this theorem about prime numbers", "math"),
        ("my python function throws a stack trace", "code"),
        ("Démontrez que la racine carrée de 3 est irrationnelle", "french"),
        ("what is the weather like", None),
        ("", None),
        ("   ", None),
        ("😀😀😀", None),
    ],
)
def test_hashing_classifier_picks_nearest_category(prompt: str, category: str | None) -> None:
    got = EmbeddingClassifier(SPEC, HashingEmbedder()).classify(prompt)
    assert (got.category if got else None) == category
    if got is not None:
        assert SPEC.threshold <= got.score <= 1.0 + 1e-9


def test_threshold_applies() -> None:
    strict = SPEC.model_copy(update={"threshold": 0.99})
    classifier = EmbeddingClassifier(strict, HashingEmbedder())
    assert classifier.classify("my python function throws a stack trace") is None
    assert classifier.nearest("my python function throws a stack trace").category == "code"


def test_results_are_cached_and_bounded() -> None:
    embedder = CountingEmbedder()
    classifier = EmbeddingClassifier(SPEC, embedder, cache_size=2)
    assert embedder.calls == 1  # the examples, in one batch
    classifier.classify("a b c")
    classifier.classify("a b c")
    assert embedder.calls == 2
    classifier.classify("d")
    classifier.classify("e")
    assert classifier.cached == 2
    classifier.classify("a b c")  # evicted: embedded again
    assert embedder.calls == 5


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    a, b = HashingEmbedder(64).embed(["Hello World", "hello world"])
    assert a == b
    assert sum(x * x for x in a) == pytest.approx(1.0)
    assert HashingEmbedder(64).embed([""])[0] == [0.0] * 64
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(0)


def test_no_spec_no_classifier() -> None:
    assert make_classifier(None) is None
    assert make_classifier(SPEC, embedder=HashingEmbedder()) is not None


def test_unknown_model_name_is_refused() -> None:
    spec = SPEC.model_copy(update={"model": "some-other-model"})
    with pytest.raises(ClassifierUnavailableError, match="not packaged"):
        make_classifier(spec)


@pytest.mark.classifier
@pytest.mark.slow
def test_real_model_classifies_paraphrases_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = ClassifierSpec.model_validate(
        {
            "categories": [
                {
                    "name": "reasoning",
                    "examples": [
                        "Prove that there are infinitely many primes.",
                        "Show that the square root of 2 is irrational.",
                    ],
                },
                {
                    "name": "chitchat",
                    "examples": ["Hi! How are you today?", "Tell me a fun fact about cats."],
                },
            ],
            "threshold": 0.4,
        }
    )
    classifier = make_classifier(spec)
    assert classifier is not None
    proof = classifier.classify("Demonstrate that no largest prime number exists.")
    assert proof is not None
    assert proof.category == "reasoning"
    chat = classifier.classify("Hello, how is your day going?")
    assert chat is not None
    assert chat.category == "chitchat"
    assert classifier.classify("Quarterly revenue table for the sales department") is None
