"""The processes the demo starts itself: the operator, and the frontier API's stand-in.

Why it exists: the demo runs the operator the way a cluster does, as its own process
(``tierwise operator``) against the embedded cluster's API, never imported; the router is
started by the embedded cluster from the Deployment the operator renders. The frontier
tier is an external API in a real cluster; here one more engine simulator stands in for
it, and says so. Each process runs in its own session (so a Ctrl-C reaches the demo, which
stops them in order) and is stopped with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from tierwise.demo.manifests import DemoError, Manifests
from tierwise.sim.config import SimConfig
from tierwise.sim.latency import PROFILES, Profile
from tierwise.sim.process import EngineProcess, start_engine


class ChildProcess:
    """A ``tierwise`` subcommand in its own process group, logged to a file."""

    def __init__(self, name: str, args: Sequence[str], log: Path) -> None:
        self.name, self.log = name, log
        self.argv = [sys.executable, "-m", "tierwise.cli", *args]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> ChildProcess:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *_: object) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def check(self) -> None:
        """Raise :class:`DemoError` with the log's tail when the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise DemoError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextlib.contextmanager
def frontier_stand_in(
    manifests: Manifests, *, profile: Profile, seed: int, log: Path
) -> Iterator[EngineProcess | None]:
    """A simulator serving the first external backend's model, or None without one."""
    externals = manifests.externals()
    if not externals:
        yield None
        return
    config = SimConfig(model=externals[0]["model"], seed=seed + 7, latency=PROFILES[profile])
    engine = start_engine(config, log_path=log, startup_timeout_s=30.0)
    try:
        yield engine
    finally:
        engine.stop()
