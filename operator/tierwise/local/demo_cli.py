"""``tierwise demo``: flags, output and exit status of the demo (see :mod:`.demo`).

Why it exists: the CLI lists this module for ``tierwise demo``; keeping argument parsing
and printing here leaves :func:`tierwise.local.demo.run_demo` a plain function that
tests can call. Exit status: 0 when every request was answered, 1 with a message when
the demo could not run or a request failed, 130 after Ctrl-C (or SIGTERM). With
``--json`` the progress goes to stderr and stdout holds only the summary document.
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

from tierwise.local.demo import REPO_EXAMPLE, DemoOptions, run_demo
from tierwise.local.demo_manifests import DemoError
from tierwise.local.demo_report import DemoSummary, format_summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run operator, router and traffic on an embedded emulated cluster",
        description="Start an emulated cluster, the operator and the router, apply "
        "examples/00-demo, send a mixed workload and report routing decisions and the "
        "cost saved against an all-frontier baseline. Engines are simulated.",
    )
    parser.add_argument(
        "--requests",
        type=_positive,
        default=200,
        metavar="N",
        help="requests to send (default 200)",
    )
    parser.add_argument("--seed", type=int, default=0, help="traffic seed (default 0)")
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=12,
        metavar="N",
        help="requests in flight at once (default 12)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="stay up after the report and print URLs to try (Ctrl-C stops)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON on stdout (progress on stderr)",
    )
    parser.add_argument(
        "--manifests",
        type=Path,
        default=REPO_EXAMPLE,
        metavar="DIR",
        help="ModelDeployments and RoutingPolicy to apply (default: examples/00-demo)",
    )
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        requests=args.requests,
        seed=args.seed,
        keep_running=args.keep_running,
        manifests=args.manifests,
        concurrency=args.concurrency,
    )
    progress = sys.stderr if args.json else sys.stdout

    def emit(line: str) -> None:
        print(line, file=progress, flush=True)

    def show(summary: DemoSummary) -> None:
        if args.json:
            print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False), flush=True)
        else:
            print("", flush=True)
            for line in format_summary(summary):
                print(line, flush=True)

    interrupted = threading.Event()

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        interrupted.set()  # in case the exception below lands in a __del__ and is lost
        raise KeyboardInterrupt

    previous: Any = signal.signal(signal.SIGTERM, interrupt)
    previous_int: Any = signal.signal(signal.SIGINT, interrupt)
    try:
        summary = run_demo(options, emit, on_summary=show, interrupted=interrupted)
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
