"""``tierwise demo --keep-running`` stays up after its summary, prints the router's URL and
the kubeconfig of its cluster (where ``kubectl get md`` shows the printer columns), and
stops everything it started — router, operator, simulators, the emulated cluster, their
files — on Ctrl-C (SIGINT) or SIGTERM, exiting 130 with no process left behind; a SIGTERM
in the middle of the traffic does the same. Wall time about a minute (two short demos)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from process_tree import Descendants, alive

URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
SHORT = ["--duration", "20", "--requests", "40", "--seed", "2"]


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tierwise.cli", "demo", *SHORT, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """stdout up to and including the first line holding ``marker`` (never blocks forever)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stream = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            break
    return "".join(seen)


def stop(process: subprocess.Popen[str], signum: int) -> str:
    process.send_signal(signum)  # also on failure: never SIGKILL first (children leak)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def test_keep_running_prints_where_things_are_and_sigint_stops_all() -> None:
    process = start("--keep-running")
    with Descendants(process.pid) as tree:
        try:
            shown = read_until(process, "  logs  ", timeout=150)
            assert "Still running" in shown, shown[-2000:]
            router = re.search(r"^  router {6}(http://127\.0\.0\.1:\d+)", shown, re.M)
            kubeconfig = re.search(r"^  kubeconfig  (\S+)$", shown, re.M)
            cluster = re.search(r"^  cluster {5}(http://127\.0\.0\.1:\d+)$", shown, re.M)
            assert router, shown[-2000:]
            assert kubeconfig, shown[-2000:]
            assert cluster, shown[-2000:]
            assert Path(kubeconfig.group(1)).is_file()
            with urllib.request.urlopen(router.group(1) + "/readyz", timeout=5) as answer:
                assert answer.status == 200
            ask = urllib.request.Request(
                cluster.group(1) + "/apis/tierwise.dev/v1alpha1/namespaces/demo/modeldeployments",
                headers={"Accept": TABLE})
            with urllib.request.urlopen(ask, timeout=5) as answer:
                table = json.loads(answer.read())
            assert [c["name"] for c in table["columnDefinitions"]][:4] == [
                "Name", "Engine", "Model", "Ready"]
            ports = {int(p) for p in URL.findall(shown)}
            assert not any(refused(p) for p in ports)  # all up while it runs
        finally:
            err = stop(process, signal.SIGINT)
    assert process.returncode == 130, err[-2000:]
    assert "everything it started is stopped" in err
    assert [p for p in ports if not refused(p)] == []
    assert len(tree.seen) >= 6
    assert alive(tree.seen) == set()
    assert not Path(kubeconfig.group(1)).exists()


def test_sigterm_during_the_traffic_stops_all() -> None:
    process = start()
    with Descendants(process.pid) as tree:
        try:
            shown = read_until(process, "s] phase steady", timeout=150)
            assert "phase steady" in shown, shown[-2000:]
            time.sleep(2)  # requests in flight, simulators busy
            assert process.poll() is None, "the demo ended before it was interrupted"
        finally:
            err = stop(process, signal.SIGTERM)
    assert process.returncode == 130, err[-2000:]
    assert "everything it started is stopped" in err
    assert "Traceback" not in err
    assert len(tree.seen) >= 6
    assert alive(tree.seen) == set()
