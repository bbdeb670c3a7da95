"""Constants and helpers the e2e scenarios share (see conftest.py for the environment)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
KUBECONFIG = os.environ.get("KUBECONFIG")
ALLOWED = {c.strip() for c in os.environ.get("TIERWISE_E2E_CONTEXT", "kind-tierwise").split(",")}
IMAGE = os.environ.get("TIERWISE_E2E_IMAGE", "tierwise:e2e")
ENGINE_IMAGE = os.environ.get("TIERWISE_E2E_ENGINE_IMAGE", "tierwise-engine-sim:e2e")
RELEASE, RELEASE_NAMESPACE = "tierwise", os.environ.get(
    "TIERWISE_E2E_RELEASE_NAMESPACE", "tierwise-system"
)
CHART = Path(__file__).parents[1] / "charts" / "tierwise"
GROUP, VERSION = "tierwise.dev", "v1alpha1"


def wait(check: Callable[[], T | None], timeout: float = 180, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(2)
