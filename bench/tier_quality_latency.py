"""The tier classifier's added latency, measured through the router at 16 requests in flight.

Why it exists: the issue's budget (under 5 ms p50 and 20 ms p99 per request on this
2-core machine with 16 requests in flight) is about the request path, not the model
alone. This starts the zero-latency backend of ``bench/router_overhead.py`` and, in turn,
two routers on the same backend and prompts: one whose policy has the calibrated rule
(scores off the event loop, as deployed) and one without it. Each router is pinned to
core 1 (``taskset``) and the backend and load generator share core 0, as in
router_overhead. The load generator keeps 16 keep-alive connections busy with chat
requests whose user turn is an evaluation prompt (MMLU, GSM8K, MT-Bench) and times each
to its last byte. Added latency = the classifier router's percentile minus the plain
router's; the router's own ``classifier_duration_seconds`` (wait for scores, queueing
included) is reported beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import uvloop
import yaml
from prometheus_client.parser import text_string_to_metric_families
from router_overhead import _free_port, _wait_ready, drive

from tierwise.sim.process import stop_process_group

PY = sys.executable
BENCH = Path(__file__).resolve().parent
CONCURRENCY = 16


def _pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


def _bodies(prompts: list[str]) -> list[bytes]:
    out = []
    for prompt in prompts:
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 8}
        data = json.dumps(body).encode()
        out.append(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (len(data), data)
        )
    return out


async def _load(port: int, requests: list[bytes], seconds: float) -> list[float]:
    latencies, counts = await drive(port, requests, CONCURRENCY, seconds, warmup=1.0)
    if counts["errors"]:
        raise RuntimeError(f"{counts['errors']} requests failed")
    return sorted(latencies)


def _pct(values: list[float], q: float) -> float:
    return values[min(int(q * len(values)), len(values) - 1)] * 1000


def _policy(root: Path, artifact: Path | None, threshold: float) -> Path:
    tiers = [
        {
            "name": "small",
            "backends": [{"modelDeployment": "small-md"}],
            "price": {"perGPUHour": 1},
        },
        {
            "name": "frontier",
            "backends": [{"modelDeployment": "large-md"}],
            "price": {"perGPUHour": 9},
        },
    ]
    spec: dict[str, Any] = {"tiers": tiers, "defaultTier": "frontier"}
    if artifact is not None:
        spec["classifier"] = {"tierQuality": {"path": str(artifact), "timeout": "50ms"}}
        spec["rules"] = [
            {
                "name": "calibrated-small",
                "tier": "small",
                "match": {"minPredictedQuality": threshold},
            }
        ]
    doc = {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "b"},
        "spec": spec,
    }
    path = root / ("rp-classifier.yaml" if artifact else "rp-plain.yaml")
    path.write_text(yaml.safe_dump(doc))
    return path


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("tierwise_router_classifier_"):
                key = s.name + ("" if "le" not in s.labels else f"{{le={s.labels['le']}}}")
                key += f"{{reason={s.labels['reason']}}}" if "reason" in s.labels else ""
                out[key] = out.get(key, 0.0) + s.value
    return out


def measure(artifact: Path, threshold: float, prompts: list[str], seconds: float) -> str:
    """Markdown lines: plain vs classifier router at concurrency 16."""
    requests = _bodies(prompts)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = _free_port()
        backend = subprocess.Popen(
            _pinned(
                0, [PY, str(BENCH / "router_overhead.py"), "backend", "--model-dir", tmp, str(port)]
            ),
            start_new_session=True,
        )
        endpoints = root / "ep.yaml"
        url = f"http://127.0.0.1:{port}"
        endpoints.write_text(yaml.safe_dump({"small-md": [url], "large-md": [url]}))
        rows = {}
        try:
            for name, art in (("plain router", None), ("router + tier classifier", artifact)):
                rows[name] = _one(root, _policy(root, art, threshold), endpoints, requests, seconds)
        finally:
            stop_process_group(backend)
    plain, cls = rows["plain router"], rows["router + tier classifier"]
    lines = [
        f"| router (concurrency {CONCURRENCY}) | requests | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for name, (lat, _) in rows.items():
        lines.append(f"| {name} | {len(lat)} | {_pct(lat, 0.5):.2f} | {_pct(lat, 0.99):.2f} |")
    add50 = _pct(cls[0], 0.5) - _pct(plain[0], 0.5)
    add99 = _pct(cls[0], 0.99) - _pct(plain[0], 0.99)
    metrics = cls[1]
    count = metrics.get("tierwise_router_classifier_duration_seconds_count", 0.0)
    mean = metrics.get("tierwise_router_classifier_duration_seconds_sum", 0.0) / max(count, 1)
    misses = {k: v for k, v in metrics.items() if k.startswith("tierwise_router_classifier_misses")}
    lines += [
        "",
        f"added by the classifier: p50 {add50:+.2f} ms, p99 {add99:+.2f} ms; router-side wait "
        f"for scores: mean {mean * 1000:.3f} ms over {count:.0f} requests; misses {misses or 0}",
    ]
    return "\n".join(lines)


def _one(
    root: Path, policy: Path, endpoints: Path, requests: list[bytes], seconds: float
) -> tuple[list[float], dict[str, float]]:
    port = _free_port()
    argv = [
        PY,
        "-m",
        "tierwise.cli",
        "router",
        "--policy",
        str(policy),
        "--endpoints",
        str(endpoints),
        "--port",
        str(port),
    ]
    router = subprocess.Popen(_pinned(1, argv), start_new_session=True)
    try:
        _wait_ready(port, router)
        latencies = uvloop.run(_load(port, requests, seconds))
        return latencies, _scrape(port)
    finally:
        stop_process_group(router)
