"""Constants and helpers the e2e scenarios share (see conftest.py for the environment)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tierwise.local.testing import wait_for

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
    """Poll a real cluster every 2 s (tierwise.local.testing.wait_for, slower)."""
    return wait_for(check, timeout=timeout, interval=2.0, message=what)
