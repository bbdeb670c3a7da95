"""Metrics of the router's classifiers: which one is in use, how it scores, what it costs.

Why it exists: a classifier that fails or falls behind must be visible (the operator sets
the policy's ``Degraded`` condition from ``classifier_info``), and a threshold is only
trusted when the distribution of scores behind it can be seen. Counted with plain numbers
on the event loop thread, like :mod:`tierwise.router.metrics`, and collected into the
same registry.

Series (prefix ``tierwise_router_``):
``classifier_info{classifier,name,state}`` (1 per classifier of the installed table;
``state`` is ``ready`` or ``failed``), ``predicted_quality{tier}`` (histogram of the
predicted probability that each cheaper tier answers well), ``classifier_duration_seconds``
(histogram: wait for a prompt's scores, queueing included) and
``classifier_misses_total{reason}`` (requests decided without scores: ``timeout``,
``unavailable``, ``overload``, ``error``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tierwise.router.metrics import PREFIX, Histogram
from tierwise.router.tier_quality_service import ClassifierStatus

SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))
SCORING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1)


class ClassifierMetrics(Collector):
    """Classifier series; registered in the router app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.statuses: dict[str, ClassifierStatus] = {}
        self.predicted: dict[str, Histogram] = {}
        self.duration = Histogram(SCORING_BUCKETS)
        self.misses: dict[str, int] = {}
        registry.register(self)

    def set_statuses(self, statuses: list[ClassifierStatus]) -> None:
        """The classifiers of the table just installed (replaces the previous ones)."""
        self.statuses = {s.classifier: s for s in statuses}

    def observe_scores(self, scores: Mapping[str, float], seconds: float) -> None:
        self.duration.observe(seconds)
        predicted = self.predicted
        for tier, p in scores.items():
            hist = predicted.get(tier)
            if hist is None:
                hist = predicted[tier] = Histogram(SCORE_BUCKETS)
            hist.observe(p)

    def count_miss(self, reason: str) -> None:
        self.misses[reason] = self.misses.get(reason, 0) + 1

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily | CounterMetricFamily]:
        info = GaugeMetricFamily(
            PREFIX + "classifier_info",
            "Classifiers of the installed table: the model in use and its state.",
            labels=["classifier", "name", "state"],
        )
        for s in self.statuses.values():
            info.add_metric([s.classifier, s.name, s.state.value], 1)
        yield info
        predicted = HistogramMetricFamily(
            PREFIX + "predicted_quality",
            "Predicted probability that a cheaper tier answers the prompt well.",
            labels=["tier"],
        )
        for tier, hist in self.predicted.items():
            predicted.add_metric([tier], hist.cumulative(), hist.total)
        yield predicted
        duration = HistogramMetricFamily(
            PREFIX + "classifier_duration_seconds",
            "Wait for a prompt's tier classifier scores, queueing included.",
        )
        duration.add_metric([], self.duration.cumulative(), self.duration.total)
        yield duration
        misses = CounterMetricFamily(
            PREFIX + "classifier_misses",
            "Requests decided without the tier classifier's scores.",
            labels=["reason"],
        )
        for reason, n in self.misses.items():
            misses.add_metric([reason], n)
        yield misses
