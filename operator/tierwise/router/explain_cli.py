"""``tierwise route explain``: the router's decision for one request, offline.

Why it exists: a platform team changing a RoutingPolicy wants to see which tier, rule and
replica a request would get before applying it, with the same code the router runs
(the table built by ``table_from_config``, ``choose_tier`` and the balancer), on the same
inputs (the policy file, the request body, headers, the endpoints file). The replica is
the one the router's balancer would pick from an empty state, named as the router's
``x-tierwise-replica`` header names it (the file's replica name, else the URL). Nothing
is sent anywhere.

Exit status: 0 with the decision; 1 when the router would reject the request (unknown
model, prompt too long for every tier), printing the OpenAI-style error body it would
answer; 2 for unreadable or invalid input files.
"""

from __future__ import annotations

import argparse
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from tierwise.api.documents import load_documents
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.router_config import router_config
from tierwise.router.balance import ReplicaLoad, make_balancer
from tierwise.router.calibrate_cli import register as register_calibrate
from tierwise.router.classifier import (
    Classifier,
    ClassifierUnavailableError,
    HashingEmbedder,
    make_classifier,
)
from tierwise.router.discovery.files import load_endpoints
from tierwise.router.features import RequestView, request_view
from tierwise.router.table import RoutingTable, table_from_config
from tierwise.router.table_document import TableError
from tierwise.router.tier_quality_service import load_for
from tierwise.router.tiers import RoutingError, TierDecision, choose_tier, uses_quality


class ClassifierChoice(StrEnum):
    MODEL = "model"
    HASHING = "hashing"
    OFF = "off"


class InputError(Exception):
    """An input file cannot be used; the message says which and why."""


def register(subparsers: Any) -> None:
    route = subparsers.add_parser("route", help="inspect routing decisions offline")
    sub = route.add_subparsers(dest="route_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("explain", help="print the tier, rule, reason and replica for a request")
    p.add_argument("--policy", required=True, help="YAML file with the RoutingPolicy")
    p.add_argument("--request", required=True, help="JSON request body ('-' for stdin)")
    p.add_argument(
        "--endpoints",
        help="YAML mapping ModelDeployment name -> base URLs or {url, name} items "
        "(the file tierwise router --endpoints takes); shows the replica chosen",
    )
    p.add_argument(
        "--header", action="append", default=[], metavar="K:V", help="request header (repeatable)"
    )
    p.add_argument(
        "--path",
        default=None,
        help="API path (default: /v1/chat/completions, or /v1/completions for prompt)",
    )
    p.add_argument(
        "--classifier",
        choices=[c.value for c in ClassifierChoice],
        default=ClassifierChoice.MODEL.value,
        help="model: the packaged model for category rules and the tierQuality artefact "
        "(default); hashing: a lexical stand-in for category rules; off: no classifier",
    )
    p.add_argument(
        "--classifier-dir",
        default=None,
        help="where tierQuality artefacts are (ConfigMaps as NAME/KEY files or ConfigMap "
        "YAML documents; default: the policy file's folder)",
    )
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(handler=run)
    register_calibrate(sub)


def run(args: argparse.Namespace) -> int:
    try:
        policy = _read_policy(Path(args.policy))
        body = _read_request(args.request)
        headers = _parse_headers(args.header)
        replicas = load_endpoints(args.endpoints) if args.endpoints else {}
        table = table_from_config(
            router_config(policy, {}, report_missing=False), replicas, secrets_dir=None
        )
    except (InputError, TableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    notes: list[str] = []
    classifier = _classifier(policy, ClassifierChoice(args.classifier), notes)
    path = args.path or (
        "/v1/completions" if "prompt" in body and "messages" not in body else "/v1/chat/completions"
    )
    view = request_view(path, headers, body)
    classifier_dir = args.classifier_dir or str(Path(args.policy).resolve().parent)
    quality = None
    if ClassifierChoice(args.classifier) is ClassifierChoice.OFF:
        if uses_quality(table):
            notes.append("tier classifier off (--classifier off): quality rules cannot match")
    else:
        quality = _quality(table, view, classifier_dir, notes)
    try:
        decision = choose_tier(table, view, classifier, quality)
    except RoutingError as exc:
        print(orjson.dumps(error_body(exc), option=orjson.OPT_INDENT_2).decode())
        return 1
    result = _result(table, decision, view, notes, has_endpoints=bool(args.endpoints))
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(_text(result))
    return 0


def error_body(exc: RoutingError) -> dict[str, Any]:
    """The OpenAI-style error JSON the router answers for ``exc``."""
    return {
        "error": {
            "message": str(exc),
            "type": "invalid_request_error",
            "param": exc.param,
            "code": exc.code,
        }
    }


def _read_policy(path: Path) -> RoutingPolicy:
    for doc in load_documents(path):
        if doc.kind != "RoutingPolicy":
            continue
        if not doc.ok:
            lines = "; ".join(str(i) for i in doc.issues)
            raise InputError(f"{path}: {doc.label}: {lines}")
        assert isinstance(doc.resource, RoutingPolicy)
        return doc.resource
    raise InputError(f"{path}: no RoutingPolicy document found")


def _read_request(name: str) -> dict[str, Any]:
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from exc
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{name}: not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InputError(f"{name}: the request body must be a JSON object")
    return body


def _parse_headers(items: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise InputError(f"--header {item!r}: write it as NAME:VALUE")
        headers[name.strip().lower()] = value.strip()
    return headers


def _classifier(
    policy: RoutingPolicy, choice: ClassifierChoice, notes: list[str]
) -> Classifier | None:
    spec = policy.spec.classifier
    if spec is None or choice is ClassifierChoice.OFF:
        return None
    if choice is ClassifierChoice.HASHING:
        notes.append("classifier: hashed bag-of-words stand-in (--classifier hashing)")
        return make_classifier(spec, embedder=HashingEmbedder())
    try:
        return make_classifier(spec)
    except ClassifierUnavailableError as exc:
        notes.append(f"classifier unavailable, category rules cannot match: {exc}")
        return None


def _quality(
    table: RoutingTable, view: RequestView, classifier_dir: str, notes: list[str]
) -> dict[str, float] | None:
    """The tier classifier's scores, as the router computes them (it fails closed too)."""
    if not uses_quality(table):
        return None
    try:
        model = load_for(table.spec, classifier_dir)
    except ClassifierUnavailableError as exc:
        notes.append(f"tier classifier unavailable, quality rules cannot match: {exc}")
        return None
    return model.scores(view.prompt_text)


def _result(
    table: RoutingTable,
    decision: TierDecision,
    view: Any,
    notes: list[str],
    *,
    has_endpoints: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tier": decision.tier,
        "rule": decision.rule,
        "reason": decision.reason,
        "shadow": [
            {"rule": s.rule, "tier": s.tier, "reason": s.reason, "wouldDecide": s.preempts}
            for s in decision.shadow
        ],
        "tableVersion": table.version,
    }
    if decision.escalated_from:
        out["escalatedFrom"] = decision.escalated_from
    if decision.quality:
        out["predictedQuality"] = {t: round(p, 4) for t, p in decision.quality}
    if has_endpoints:
        out["replica"] = _replica(table, decision.tier, view)
    if notes:
        out["notes"] = notes
    return out


def _replica(table: RoutingTable, tier: str, view: Any) -> dict[str, Any] | None:
    endpoints = table.tier(tier).endpoints
    if not endpoints:
        return None
    balancer = make_balancer(table.spec.balancing)
    choice = balancer.choose([ReplicaLoad(e) for e in endpoints], view)
    ep = choice.replica.endpoint
    return {
        "backend": ep.backend,
        "name": ep.replica,
        "url": ep.url,
        "upstreamModel": ep.upstream_model,
        "policy": table.spec.balancing.policy.value,
        "reason": choice.reason,
    }


def _text(result: dict[str, Any]) -> str:
    lines = [
        f"tier:    {result['tier']}",
        f"rule:    {result['rule']}",
        f"reason:  {result['reason']}",
    ]
    if "predictedQuality" in result:
        scores = ", ".join(f"{t} {p:.3f}" for t, p in result["predictedQuality"].items())
        lines.append(f"quality: {scores} (predicted probability each tier answers well)")
    for s in result["shadow"]:
        verdict = "would decide" if s["wouldDecide"] else "would not decide"
        lines.append(f"shadow:  {s['rule']} -> {s['tier']} ({verdict}): {s['reason']}")
    if "replica" in result:
        r = result["replica"]
        if r is None:
            lines.append("replica: none (the tier has no endpoints)")
        else:
            lines.append(f"backend: {r['backend']}")
            at = r["url"] if r["name"] == r["url"] else f"{r['name']} at {r['url']}"
            lines.append(f"replica: {at} ({r['policy']}, empty state: {r['reason']})")
    lines.extend(f"note:    {n}" for n in result.get("notes", []))
    lines.append(f"table:   {result['tableVersion']}")
    return "\n".join(lines)
