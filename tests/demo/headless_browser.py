"""Open a page in real headless Chromium and report what a person would see: console
errors, uncaught exceptions, a screenshot, and the answer to a script run in the page.

Drives Debian's ``chromium`` over the DevTools protocol (``--remote-debugging-port``,
aiohttp's websocket client), with a fresh profile and everything that could reach the
network turned off. :func:`chromium` finds the binary; tests skip without it unless
``TIERWISE_REQUIRE_BROWSER=1`` (CI sets it after installing the package).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
)


def chromium() -> str:
    """The Chromium binary, or skip (fail when TIERWISE_REQUIRE_BROWSER=1)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("TIERWISE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TIERWISE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@dataclass
class Page:
    """What loading one page gave."""

    errors: list[str] = field(default_factory=list)
    """Console errors, uncaught exceptions and error log entries, as text."""
    value: Any = None
    """What ``evaluate`` returned."""
    screenshot: bytes = b""


class _Session:
    """Calls and events over one DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.loaded = asyncio.Event()

    async def read(self) -> None:
        async for message in self.ws:
            data = message.json()
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                if data["method"] == "Page.loadEventFired":
                    self.loaded.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result") or {}
        return result

    def errors(self) -> list[str]:
        out = []
        for event in self.events:
            method, params = event["method"], event.get("params") or {}
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails") or {}
                out.append("exception: " + str((details.get("exception") or {}).get(
                    "description") or details.get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description"))) for a in params.get("args") or []))
            elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
                out.append("log: " + str(params["entry"].get("text")))
        return out


async def _port(profile: Path, process: asyncio.subprocess.Process) -> int:
    marker = profile / "DevToolsActivePort"
    for _ in range(300):
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        await asyncio.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port within 30 s")


async def load(path: Path, *, evaluate: str = "null", size: tuple[int, int] = (1000, 1600)
               ) -> Page:
    """Load ``path`` (an absolute local file), run ``evaluate`` in it, take a full-page
    screenshot."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="tierwise-chromium-") as folder:
        profile = Path(folder)
        process = await asyncio.create_subprocess_exec(
            binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
            "about:blank", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            return await _drive(await _port(profile, process), path, evaluate)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                os.killpg(process.pid, 9)
                await process.wait()


async def _drive(port: int, path: Path, evaluate: str) -> Page:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            session = _Session(ws)
            reader = asyncio.create_task(session.read())
            try:
                for domain in ("Page", "Runtime", "Log"):
                    await session.call(f"{domain}.enable")
                await session.call("Page.navigate", url=path.as_uri())
                await asyncio.wait_for(session.loaded.wait(), 30)
                await asyncio.sleep(0.3)  # late console messages
                value = await session.call("Runtime.evaluate", expression=evaluate,
                                           returnByValue=True)
                shot = await session.call("Page.captureScreenshot", format="png",
                                          captureBeyondViewport=True)
                return Page(session.errors(), (value.get("result") or {}).get("value"),
                            base64.b64decode(shot["data"]))
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
