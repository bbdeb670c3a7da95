"""``tierwise demo``: flags, output and exit status of the demo (see :mod:`.run`).

Why it exists: the CLI lists this module for ``tierwise demo``; keeping argument parsing
and printing here leaves :func:`tierwise.demo.run.run_demo` a plain function that tests
can call. Exit status: 0 when every request was answered, 1 with a message when the demo
could not run or a request failed, 130 after Ctrl-C (or SIGTERM). With ``--json`` the
progress goes to stderr and stdout holds only the summary document; ``--report PATH``
writes the HTML report there as well.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from tierwise.demo.manifests import DemoError
from tierwise.demo.report import render_report
from tierwise.demo.run import REPO_EXAMPLE, DemoOptions, run_demo
from tierwise.demo.script import MIN_DURATION_S, MIN_REQUESTS
from tierwise.demo.summary import DemoSummary
from tierwise.demo.text import format_summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole loop on an embedded cluster: operator, router, autoscaling, traffic",
        description="Start an embedded (emulated) Kubernetes cluster, the operator and the "
        "router it deploys, apply examples/00-demo, and send four phases of traffic (steady, "
        "burst, quiet, wake) while a live view shows tiers, replicas and scale events; then "
        "report routing decisions, replicas over time and the cost saved against an "
        "all-frontier baseline. Engines are simulated.",
    )
    _traffic_arguments(parser)
    _output_arguments(parser)
    parser.set_defaults(handler=run)


def _traffic_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DemoOptions()
    parser.add_argument(
        "--duration",
        type=_at_least(MIN_DURATION_S, float),
        default=defaults.duration_s,
        metavar="S",
        help=f"length of the traffic script in seconds (default {defaults.duration_s:g}; "
        "start-up adds 5-10)",
    )
    parser.add_argument(
        "--requests",
        type=_at_least(MIN_REQUESTS, int),
        default=defaults.requests,
        metavar="N",
        help=f"requests to send over the four phases (default {defaults.requests})",
    )
    parser.add_argument("--seed", type=int, default=0, help="traffic seed (default 0)")
    parser.add_argument(
        "--concurrency",
        type=_at_least(1, int),
        default=defaults.max_in_flight,
        metavar="N",
        help=f"most requests in flight at once (default {defaults.max_in_flight})",
    )
    parser.add_argument(
        "--manifests",
        type=Path,
        default=REPO_EXAMPLE,
        metavar="DIR",
        help="ModelDeployments and RoutingPolicy to apply (default: examples/00-demo)",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="stay up after the summary and print URLs to try (Ctrl-C stops)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON on stdout (progress on stderr)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write a self-contained HTML report (charts; works offline) to PATH",
    )


def _at_least(low: float, kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from e
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:g}")
        return value

    return parse


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        duration_s=args.duration,
        requests=args.requests,
        seed=args.seed,
        keep_running=args.keep_running,
        manifests=args.manifests,
        max_in_flight=args.concurrency,
    )
    progress = sys.stderr if args.json else sys.stdout

    def show(summary: DemoSummary) -> None:
        if args.report is not None:
            args.report.write_text(render_report(summary), encoding="utf-8")
        if args.json:
            print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False), flush=True)
        else:
            print("", flush=True)
            for line in format_summary(summary):
                print(line, flush=True)
        if args.report is not None:
            print(f"report      {args.report.resolve()}", file=progress, flush=True)

    interrupted = threading.Event()

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        interrupted.set()  # in case the exception below lands in a __del__ and is lost
        raise KeyboardInterrupt

    previous: Any = signal.signal(signal.SIGTERM, interrupt)
    previous_int: Any = signal.signal(signal.SIGINT, interrupt)
    try:
        summary = run_demo(options, progress, on_summary=show, interrupted=interrupted)
    except DemoError as exc:
        print(f"tierwise demo: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tierwise demo: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    if summary.failed:
        print(
            f"tierwise demo: {summary.failed} of {summary.requests} requests failed",
            file=sys.stderr,
        )
        return 1
    return 0
