"""Turns an engine's command line into `tierwise sim engine` (see the Dockerfile beside).

Only what the simulator needs is read: the served model name (else the model path) and the
port; every other engine flag is accepted and ignored.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# The embedded cluster reads engine command lines the same way.
from tierwise.local.sim_workloads import flag_value as flag


def simulate(engine: str, args: Sequence[str], *, model: str | None, port: str) -> None:
    served = flag(args, "--served-model-name") or model or "sim"
    command = ["tierwise", "sim", "engine", "--engine", engine, "--model", served,
               "--host", "0.0.0.0", "--port", flag(args, "--port") or port]  # fmt: skip
    print("engine-sim:", " ".join(command), file=sys.stderr, flush=True)
    os.execvp(command[0], command)
