"""Merge the Prometheus text of several router worker processes into one answer.

Why it exists: with ``tierwise router --workers N`` every worker counts its own requests
in plain Python numbers (:mod:`tierwise.router.metrics`); prometheus-client's
multiprocess mode would need its mmap-backed value classes on the hot path and does not
cover custom collectors. A scrape that reaches any worker must still see the whole
process group, so the worker that answers ``/metrics`` fetches its siblings' text and
merges it here: pure text in, text out.

Rules, per metric family (its ``# TYPE`` line), per sample (name plus labels):
    * counters, histograms and summaries: summed (each worker counted its own requests);
    * gauges: summed (``in_flight``, ``pending_requests``: work held by each worker),
      except the families in :data:`SAME_IN_EVERY_WORKER`, which describe state every
      worker reads from the same sources, and take the largest value
      (``endpoints``, ``table_version_info``: a label set per version in use, so two
      versions during a reload show as two series; the last request's time), and
      :data:`WORST_OF_WORKERS`, which take the smallest (a watch that is down in one
      worker; the oldest sync);
    * ``info`` families: the largest value (1 per label set seen);
    * ``*_created`` samples: the smallest (the oldest worker's start).
Families keep their first-seen order, samples their first-seen order within the family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

PREFIX = "tierwise_router_"
SAME_IN_EVERY_WORKER = frozenset(
    PREFIX + name
    for name in (
        "endpoints",
        "table_version_info",
        "last_request_timestamp_seconds",
        "classifier_info",
        "config_source_info",
        "workers",
    )
)
WORST_OF_WORKERS = frozenset(
    PREFIX + name for name in ("discovery_watch_up", "discovery_last_sync_timestamp_seconds")
)


class _Family:
    __slots__ = ("combine", "header", "samples")

    def __init__(self) -> None:
        self.header: list[str] = []
        self.samples: dict[str, float] = {}
        self.combine: Callable[[float, float], float] = _add


def _add(a: float, b: float) -> float:
    return a + b


def _combiner(name: str, kind: str) -> Callable[[float, float], float]:
    if name in WORST_OF_WORKERS:
        return min
    if kind == "info" or name in SAME_IN_EVERY_WORKER:
        return max
    return _add


def merge(texts: Sequence[bytes]) -> bytes:
    """One exposition from several (see the module docstring); malformed lines are dropped."""
    families: dict[str, _Family] = {}
    for text in texts:
        current = families.setdefault("", _Family())
        for line in text.decode("utf-8", "replace").splitlines():
            if not line:
                continue
            if line.startswith("#"):
                current = _header(families, line)
                continue
            key, _, value = line.rpartition(" ")
            try:
                number = float(value)
            except ValueError:
                continue
            samples = current.samples
            if key not in samples:
                samples[key] = number
            elif key.split("{", 1)[0].endswith("_created"):
                samples[key] = min(samples[key], number)
            else:
                samples[key] = current.combine(samples[key], number)
    return "".join(_render(families.values())).encode()


def _header(families: dict[str, _Family], line: str) -> _Family:
    parts = line.split(" ", 3)
    if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
        return families.setdefault("", _Family())
    name = parts[2]
    family = families.get(name)
    if family is None:
        family = families[name] = _Family()
    if line not in family.header:
        family.header.append(line)
        if parts[1] == "TYPE" and len(parts) == 4:
            family.combine = _combiner(name, parts[3].strip())
    return family


def _render(families: Iterable[_Family]) -> Iterable[str]:
    for family in families:
        for line in family.header:
            yield line + "\n"
        for key, value in family.samples.items():
            yield f"{key} {_number(value)}\n"


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
