"""The small text-format reader agrees with prometheus_client's own exposition."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tierwise.autoscaler.exposition import ExpositionError, parse
from tierwise.engines import vllm


def _registry(label: str, value: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    gauge = Gauge(
        "vllm:num_requests_waiting", "Waiting.", ["model_name", "engine"], registry=registry
    )
    gauge.labels(model_name=label, engine="0").set(value)
    gauge.labels(model_name="other", engine="1").set(2)
    Counter("vllm:prompt_tokens", "Prompt tokens.", registry=registry).inc(7)
    Histogram("vllm:time_to_first_token_seconds", "TTFT.", registry=registry).observe(0.3)
    return registry


@pytest.mark.parametrize(
    "label", ["", "plain", "Qwen/Qwen3-32B", "ünïcødé 模型", 'q"uo\\te', "line\nbreak"]
)
def test_labels_and_values_match_the_registry(label: str) -> None:
    text = generate_latest(_registry(label, 3.5)).decode()
    found = parse(text, [vllm.NUM_REQUESTS_WAITING, vllm.PROMPT_TOKENS_TOTAL])
    waiting = {s.labels["model_name"]: s.value for s in found[vllm.NUM_REQUESTS_WAITING]}
    assert waiting == {label: 3.5, "other": 2.0}
    assert [s.value for s in found[vllm.PROMPT_TOKENS_TOTAL]] == [7.0]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30), st.floats(allow_nan=False, allow_infinity=True))
def test_any_label_and_value_round_trip(label: str, value: float) -> None:
    text = generate_latest(_registry(label, value)).decode()
    (sample,) = [
        s
        for s in parse(text, [vllm.NUM_REQUESTS_WAITING])[vllm.NUM_REQUESTS_WAITING]
        if s.labels["engine"] == "0"
    ]
    assert sample.labels["model_name"] == label
    assert sample.value == value


def test_only_asked_names_are_read_and_unparsed_lines_are_skipped() -> None:
    text = 'garbage{{{ not a metric\nfoo 1\nfoo_bucket{le="+Inf"} 3\n# EOF\n'
    assert parse(text, ["foo"]) == {"foo": [parse("foo 1", ["foo"])["foo"][0]]}
    assert parse(text, []) == {}
    assert parse("", ["foo"]) == {}


@pytest.mark.parametrize(
    ("line", "value", "stamp"),
    [
        ("m 1", 1.0, None),
        ("m{} 2 1700000000000", 2.0, 1_700_000_000.0),
        ('m{a="x",} +Inf', math.inf, None),
        ("m -Inf", -math.inf, None),
        ("m\t4e3", 4000.0, None),
    ],
)
def test_values_and_millisecond_timestamps(line: str, value: float, stamp: float | None) -> None:
    (sample,) = parse(line, ["m"])["m"]
    assert (sample.value, sample.timestamp) == (value, stamp)


def test_nan_is_read_as_nan() -> None:
    assert math.isnan(parse("m NaN", ["m"])["m"][0].value)


@pytest.mark.parametrize("line", ["m", 'm{a="x"}', "m{a=x} 1", 'm{a="x} 1', "m one", "m 1 2 3"])
def test_malformed_wanted_lines_raise(line: str) -> None:
    with pytest.raises(ExpositionError):
        parse(line, ["m"])
