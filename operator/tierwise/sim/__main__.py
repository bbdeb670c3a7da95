"""``python -m tierwise.sim engine|traffic ...``: the same as ``tierwise sim ...``.

Why it exists: subprocess launchers (:mod:`tierwise.sim.process`, the local cluster) start
simulators with this entry point so a simulator never depends on other capabilities of the
``tierwise`` command importing cleanly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tierwise.sim.cli import register


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tierwise.sim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sim", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
