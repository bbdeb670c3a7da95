"""The CLI flags round-trip a config, and simulator processes start, serve and stop."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tierwise.sim.app import serve_engine
from tierwise.sim.cli import config_from_args, engine_args, register
from tierwise.sim.config import EngineKind, FaultConfig, SimConfig
from tierwise.sim.latency import PROFILES, LatencyParams, Profile
from tierwise.sim.process import running_engines


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "config",
    [
        SimConfig(),
        SimConfig(
            engine=EngineKind.SGLANG,
            model="org/Model-7B",
            seed=9,
            latency=LatencyParams(
                1.5, 0.25, 7.0, 0.125, max_running=3, max_queue=4, kv_capacity_tokens=1234
            ),
            context_length=4096,
            block_size=8,
            output_tokens_min=2,
            output_tokens_max=3,
            model_path=Path("/tmp/m"),
            faults=FaultConfig(
                error_status=503, error_rate=0.25, extra_latency_s=0.5, hang=True, fail_health=True
            ),
        ),
    ],
)
def test_engine_flags_round_trip_a_config(config: SimConfig) -> None:
    args = _parse(["sim", "engine", *engine_args(config)])
    assert config_from_args(args) == config


def test_profile_flag_is_a_preset_that_single_flags_override() -> None:
    args = _parse(["sim", "engine", "--profile", "large", "--max-running", "7"])
    expected = dataclasses.replace(PROFILES[Profile.LARGE], max_running=7)
    assert config_from_args(args).latency == expected


def test_simulator_process_serves_and_stops() -> None:
    configs = [
        SimConfig(model="a", latency=PROFILES[Profile.ZERO]),
        SimConfig(model="b", engine=EngineKind.SGLANG, latency=PROFILES[Profile.ZERO]),
    ]
    with running_engines(configs) as engines:
        for engine in engines:
            with urllib.request.urlopen(engine.url + "/get_model_info") as response:
                assert response.status == 200
        with urllib.request.urlopen(engines[1].url + "/metrics") as response:
            assert b"sglang:num_running_reqs" in response.read()
        pids = [engine.process.pid for engine in engines]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_traffic_command_runs_agentic_against_an_in_process_simulator() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tierwise.sim",
            "traffic",
            "--workload",
            "agentic",
            "-n",
            "12",
            "--profile",
            "zero",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"count":12' in result.stdout
    assert '"errors":0' in result.stdout


async def test_info_endpoints_report_a_local_model_folder(tmp_path: Path) -> None:
    config = SimConfig(
        engine=EngineKind.SGLANG,
        model="m",
        model_path=tmp_path / "m",
        latency=PROFILES[Profile.ZERO],
    )
    async with serve_engine(config) as url, aiohttp.ClientSession() as http:
        for path in ("/get_model_info", "/model_info", "/get_server_info", "/server_info"):
            async with http.get(url + path) as response:
                assert response.status == 200
                assert (await response.json())["model_path"] == str(tmp_path / "m")
        async with http.get(url + "/v1/models") as response:
            card = (await response.json())["data"][0]
    assert card["max_model_len"] == config.context_length
    assert (tmp_path / "m" / "config.json").is_file()
