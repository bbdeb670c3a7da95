"""``tierwise demo --keep-running`` stays up until interrupted, and then stops everything
it started — router, operator, simulators, the emulated cluster — and exits 130, for
Ctrl-C (SIGINT) and SIGTERM alike. Wall time about 25 s (two demo runs of 8 requests)."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

URL = re.compile(r"http://127\.0\.0\.1:(\d+)")


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """stdout up to and including the line starting with ``marker`` (never blocks forever)."""
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
        if line.startswith(marker):
            break
    return "".join(seen)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_everything(signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tierwise.cli", "demo", "--requests", "8", "--keep-running"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        shown = read_until(process, "  logs", timeout=120)
        assert "Still running" in shown, shown[-2000:]
        ports = {int(p) for p in URL.findall(shown)}
        assert len(ports) >= 7  # router, cluster, frontier stand-in, 4 replicas
        assert not any(refused(p) for p in ports)  # all up while it runs
    finally:
        process.send_signal(signum)  # also on failure: never SIGKILL first (children leak)
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert process.returncode == 130, err[-2000:]
    assert "everything it started is stopped" in err
    assert [p for p in ports if not refused(p)] == []
