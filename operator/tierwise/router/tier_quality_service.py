"""The learned tier classifier on the request path: off the event loop, bounded, timed out,
and failing closed where everyone can see it.

Why it exists: a classifier that blocks the event loop, queues without bound or silently
degrades turns a cost optimisation into an outage or a quiet quality loss. This module
owns those decisions so the proxy only awaits :meth:`QualityScorer.scores`.

Request path
    * Scoring runs on one worker thread owned by the router app (splitting and summing
      cached word scores takes about 10-60 µs; one thread keeps the second core for the
      event loop). Prompts that arrive while a batch is scored are scored together in the
      next trip to the thread (one hand-off per batch, not per request). At most
      ``max_pending`` prompts [64] wait or run at once; a request beyond that gets no
      scores at once (miss reason ``overload``).
    * A request waits at most the policy's ``tierQuality.timeout`` [20ms] for its scores;
      then its quality conditions do not hold, so the rules after them and finally
      ``defaultTier`` decide (miss reason ``timeout``). Misses are counted in
      ``tierwise_router_classifier_misses_total{reason}``.

Failing closed
    An artefact that cannot be read, does not verify (sha256 pin, tokenizer hash, shape)
    or does not score a tier a rule asks about leaves the scorer *failed*: the table still
    installs, every quality condition is false (requests take the policy's default
    decision, counted as miss reason ``unavailable``), there is no stand-in model, and the
    failure shows as ``tierwise_router_classifier_info{classifier="tierQuality",
    state="failed"}`` and in ``/readyz``'s ``classifiers`` list with the message, which
    the operator turns into the policy's ``Degraded`` condition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import yaml

from tierwise.api.common import parse_duration
from tierwise.api.routing_policy import RoutingPolicySpec, TierQualitySpec
from tierwise.router.classifier import ClassifierUnavailableError
from tierwise.router.tier_quality import TierQualityModel, load_model

log = logging.getLogger(__name__)

DEFAULT_CLASSIFIER_DIR = "/etc/tierwise/classifiers"
DEFAULT_MAX_PENDING = 64


class ScoreMetrics(Protocol):
    """Where the scorer counts (:class:`~tierwise.router.classifier_metrics
    .ClassifierMetrics`)."""

    def observe_scores(self, scores: Mapping[str, float], seconds: float) -> None: ...

    def count_miss(self, reason: str) -> None: ...


class ClassifierState(StrEnum):
    READY = "ready"
    FAILED = "failed"


class Miss(StrEnum):
    """Why a request was decided without the tier classifier's scores."""

    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    OVERLOAD = "overload"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ClassifierStatus:
    """One classifier as ``/readyz`` and ``classifier_info`` show it."""

    classifier: str
    """``categories`` or ``tierQuality``."""
    name: str
    """The model actually in use (``tier-quality:<sha256 prefix>``, ``all-MiniLM-L6-v2``,
    ``hashing``), or the one that failed to load."""
    state: ClassifierState
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"classifier": self.classifier, "name": self.name, "state": self.state.value}
        if self.message:
            out["message"] = self.message
        return out


def artifact_path(spec: TierQualitySpec, classifier_dir: str | None) -> str:
    """Where the artefact is read from in a cluster (the mounted ConfigMap key, or ``path``);
    the router watches this file so a refreshed mount is picked up."""
    base = Path(classifier_dir or DEFAULT_CLASSIFIER_DIR)
    if spec.path is not None:
        path = Path(spec.path)
        return str(path if path.is_absolute() else base / path)
    assert spec.config_map is not None
    return str(base / spec.config_map.name / spec.config_map.key)


def read_artifact(spec: TierQualitySpec, classifier_dir: str | None) -> tuple[bytes, str]:
    """The artefact's bytes and where they came from.

    ``configMap``: the mounted file ``{dir}/{name}/{key}``, else (local runs) the ``key`` of
    a ConfigMap document named ``name`` in a YAML file directly in ``{dir}``. ``path``:
    absolute, or relative to ``{dir}``. ``dir`` defaults to /etc/tierwise/classifiers.
    """
    base = Path(classifier_dir or DEFAULT_CLASSIFIER_DIR)
    if spec.path is not None:
        path = Path(spec.path)
        path = path if path.is_absolute() else base / path
        return _read(path), str(path)
    ref = spec.config_map
    assert ref is not None
    mounted = base / ref.name / ref.key
    if mounted.is_file():
        return _read(mounted), str(mounted)
    for candidate in sorted([*base.glob("*.yaml"), *base.glob("*.yml")]):
        found = _configmap_key(candidate, ref.name, ref.key)
        if found is not None:
            return found, f"{candidate} (ConfigMap {ref.name}, key {ref.key})"
    raise ClassifierUnavailableError(
        f"ConfigMap {ref.name!r} key {ref.key!r} is not mounted at {mounted}; mount the "
        "ConfigMap that calibrate wrote there (or give the router --classifier-dir)"
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ClassifierUnavailableError(
            f"tier classifier artefact {path}: cannot read: {exc.strerror}"
        ) from exc


def _configmap_key(path: Path, name: str, key: str) -> bytes | None:
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "ConfigMap":
            continue
        meta: Any = doc.get("metadata") or {}
        data: Any = doc.get("data") or {}
        if meta.get("name") == name and isinstance(data.get(key), str):
            value: str = data[key]
            return value.encode("utf-8")
    return None


def load_for(spec: RoutingPolicySpec, classifier_dir: str | None) -> TierQualityModel:
    """The policy's tier classifier, checked against the rules that read it."""
    classifier = spec.classifier
    assert classifier is not None
    assert classifier.tier_quality is not None
    tq = classifier.tier_quality
    data, source = read_artifact(tq, classifier_dir)
    model = load_model(data, source, sha256=tq.sha256)
    scored = model.artifact.scored_tiers
    for rule in spec.rules:
        if rule.match.min_predicted_quality is not None and rule.tier not in scored:
            raise ClassifierUnavailableError(
                f"rule {rule.name!r} reads the predicted quality of tier {rule.tier!r}, which "
                f"{source} does not score (it scores {', '.join(scored)}); recalibrate with "
                "labels for that tier or change the rule"
            )
    return model


def model_name(model: TierQualityModel | None, spec: TierQualitySpec) -> str:
    digest = model.sha256 if model is not None else (spec.sha256 or "")
    return f"tier-quality:{digest[:12]}" if digest else "tier-quality"


class QualityScorer:
    """The tier classifier as the proxy sees it (see the module docstring)."""

    def __init__(
        self,
        model: TierQualityModel | None,
        status: ClassifierStatus,
        *,
        executor: ThreadPoolExecutor,
        timeout_s: float,
        metrics: ScoreMetrics,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.model = model
        self.status = status
        self._executor = executor
        self._timeout_s = timeout_s
        self._metrics = metrics
        self._max_pending = max_pending
        self._pending = 0
        self._queue: list[tuple[str, asyncio.Future[Mapping[str, float]]]] = []
        self._busy = False
        self.needed = True
        """Whether a rule reads the scores (:meth:`build` sets it from the rules)."""

    @classmethod
    def build(
        cls,
        spec: RoutingPolicySpec,
        *,
        classifier_dir: str | None,
        executor: ThreadPoolExecutor,
        metrics: ScoreMetrics,
    ) -> QualityScorer:
        """Load the policy's artefact; on failure a scorer that fails closed (logged)."""
        assert spec.classifier is not None
        assert spec.classifier.tier_quality is not None
        tq = spec.classifier.tier_quality
        model: TierQualityModel | None = None
        try:
            model = load_for(spec, classifier_dir)
            status = ClassifierStatus("tierQuality", model_name(model, tq), ClassifierState.READY)
        except ClassifierUnavailableError as exc:
            log.error("tier classifier failed, quality rules will not match: %s", exc)
            status = ClassifierStatus(
                "tierQuality", model_name(None, tq), ClassifierState.FAILED, str(exc)
            )
        timeout = parse_duration(tq.timeout)
        scorer = cls(model, status, executor=executor, timeout_s=timeout, metrics=metrics)
        scorer.needed = any(r.match.min_predicted_quality is not None for r in spec.rules)
        return scorer

    async def scores(self, text: str) -> Mapping[str, float] | None:
        """Scores for ``text``, or None (counted) when they cannot be had in time."""
        model = self.model
        if model is None:
            return self._miss(Miss.UNAVAILABLE)
        if self._pending >= self._max_pending:
            return self._miss(Miss.OVERLOAD)
        self._pending += 1
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Mapping[str, float]] = loop.create_future()
        self._queue.append((text, future))
        if not self._busy:
            self._submit(loop)
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await future
        except TimeoutError:
            return self._miss(Miss.TIMEOUT)
        except Exception as exc:  # a scoring bug must not fail the request
            log.warning("tier classifier error: %s", exc)
            return self._miss(Miss.ERROR)
        finally:
            self._pending -= 1
        self._metrics.observe_scores(result, time.monotonic() - started)
        return result

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Score everything queued in one trip to the worker thread (batching saves a
        thread hand-off per request when requests arrive together)."""
        batch = [(t, f) for t, f in self._queue if not f.done()]
        self._queue = []
        if not batch:
            return
        self._busy = True
        model = self.model
        assert model is not None

        def work() -> list[Mapping[str, float] | Exception]:
            out: list[Mapping[str, float] | Exception] = []
            for text, _ in batch:
                try:
                    out.append(model.scores(text))
                except Exception as exc:  # delivered to that request only
                    out.append(exc)
            return out

        def deliver(done: asyncio.Future[list[Mapping[str, float] | Exception]]) -> None:
            self._busy = False
            results = done.result() if not done.cancelled() else []
            for (_, future), result in zip(batch, results, strict=False):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if self._queue:
                self._submit(loop)

        loop.run_in_executor(self._executor, work).add_done_callback(deliver)

    def _miss(self, reason: Miss) -> Mapping[str, float] | None:
        self._metrics.count_miss(reason.value)
        return None
