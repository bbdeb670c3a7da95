"""The CPU-only engine stand-in (images/engine-sim, used by e2e on kind) accepts exactly the
command lines the operator renders for vLLM and SGLang pods and serves the simulator there:
the served model name and port from the engine's own flags, its health path answering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tierwise.api.model_deployment import ModelDeployment
from tierwise.local.processes import free_port
from tierwise.local.testing import wait_for
from tierwise.manifests import render_model_deployment

SHIMS = Path(__file__).parents[2] / "images" / "engine-sim"


def _command(engine: str) -> list[str]:
    md = ModelDeployment.model_validate({
        "apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "tiny", "namespace": "e2e"},
        "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B", "servedName": f"tiny-{engine}"},
                 "engine": {"name": engine, "contextLength": 4096}},
    })  # fmt: skip
    container = render_model_deployment(md)[0]["spec"]["template"]["spec"]["containers"][0]
    return [*container["command"], *container.get("args", [])]


def _answers(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            loaded: dict[str, object] = json.loads(response.read())
            return loaded
    except OSError:
        return None


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_the_rendered_engine_command_starts_the_simulator(engine: str, tmp_path: Path) -> None:
    command = _command(engine)
    port = free_port()
    command = [part.replace("8000", str(port)).replace("30000", str(port)) for part in command]
    if command[0] == "vllm":
        command = [sys.executable, str(SHIMS / "vllm"), *command[1:]]
    else:
        assert command[:3] == ["python3", "-m", "sglang.launch_server"]
        command = [sys.executable, *command[1:]]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SHIMS), os.environ.get("PYTHONPATH")])),
    }
    log = (tmp_path / "engine.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        models = wait_for(
            lambda: _answers(f"http://127.0.0.1:{port}/v1/models"),
            timeout=30,
            message=f"the {engine} stand-in serves ({(tmp_path / 'engine.log').read_text()})",
        )
        assert [m["id"] for m in models["data"]] == [f"tiny-{engine}"]  # type: ignore[index]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as health:
            assert health.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
