"""The ``tierwise`` command: one entry point, one subcommand per capability.

Each subcommand lives next to the code it drives (``tierwise/<area>/cli.py``) and exposes
``register(subparsers)``; this module only collects them. Modules are imported lazily so
``tierwise validate`` does not pay for importing kopf or aiohttp.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (subcommand, module holding ``register``): order is the order ``--help`` shows.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "tierwise.demo.cli"),
    ("validate", "tierwise.manifests.validate_cli"),
    ("crds", "tierwise.api.crds_cli"),
    ("render", "tierwise.manifests.cli"),
    ("operator", "tierwise.controller.cli"),
    ("router", "tierwise.router.cli"),
    ("route", "tierwise.router.explain_cli"),
    ("sim", "tierwise.sim.cli"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierwise",
        description="Multi-model LLM serving on Kubernetes: operator, router, simulator.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module_name in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A capability not built yet is simply absent from --help; any other
            # missing module is a real error and must surface.
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def _version() -> str:
    from tierwise import __version__

    return f"tierwise {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
