"""Operator-wide rendering choices that are not part of any one ModelDeployment.

Defaults suit a stock NVIDIA GPU cluster (GPU Operator / device plugin labels and taints).
The operator builds one :class:`RenderSettings` from its own configuration and passes it
to every render; ``tierwise render`` uses the defaults.

Startup budget: loading weights (download, then sharding over NCCL for tensor
parallelism, then CUDA graph capture) takes minutes for a 8B model and can take most of an
hour for a 400B model on TP 8. The startup probe allows ``startup_budget_seconds`` (20 min)
and ``large_startup_budget_seconds`` (60 min) once tensor parallelism reaches
``large_tensor_parallel_size`` (4): a probe that gives up early restarts the pod and
throws the download away, which is far worse than waiting.

Draining: on termination the pod is first removed from the Service's endpoints, but kube-
proxy and the router learn that asynchronously, so ``pre_stop_sleep_seconds`` keeps the
engine serving while they catch up; then the engine gets SIGTERM and the rest of
``termination_grace_seconds`` to finish in-flight streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RenderSettings:
    gpu_product_label: str = "nvidia.com/gpu.product"
    """Node label the GPU product (spec.resources.gpuProduct) is matched against."""
    cache_mount_path: str = "/model-cache"
    """Where the model cache volume is mounted; HF_HOME is ``<this>/huggingface``."""
    models_mount_root: str = "/models"
    """pvc:// sources are mounted read-only at ``<this>/<claim>``."""
    startup_budget_seconds: int = 20 * 60
    large_startup_budget_seconds: int = 60 * 60
    large_tensor_parallel_size: int = 4
    startup_period_seconds: int = 10
    termination_grace_seconds: int = 120
    pre_stop_sleep_seconds: int = 15
    s3_downloader_image: str = "amazon/aws-cli:2.17.0"
    """Init container image for s3:// sources (runs ``aws s3 sync``)."""
    gs_downloader_image: str = "google/cloud-sdk:489.0.0-slim"
    """Init container image for gs:// sources (runs ``gcloud storage rsync``)."""
    pod_monitor_interval: str = "15s"
    revision_history_limit: int = 3
    engine_images: tuple[tuple[str, str], ...] = ()
    """(engine name, image) pairs replacing an engine's pinned default image (the operator's
    ``--engine-image``); ``spec.engine.image`` still wins over both."""

    @property
    def engine_image_map(self) -> Mapping[str, str]:
        return dict(self.engine_images)
