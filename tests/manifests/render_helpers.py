"""Shared by the manifests tests: inputs, a ModelDeployment strategy, schema validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from hypothesis import strategies as st

from tierwise.api.model_deployment import ModelDeployment

HERE = Path(__file__).parent
INPUTS = HERE / "inputs"
GOLDEN = HERE / "golden"
# A recent Kubernetes release whose schema kubernetes-validate ships.
KUBERNETES_VERSION = "1.33"

TP_FLAG = {"sglang": "--tp-size", "vllm": "--tensor-parallel-size"}
DP_FLAG = {"sglang": "--dp-size", "vllm": "--data-parallel-size"}

# PodMonitor is a Prometheus Operator CRD that kubernetes-validate does not know: check the
# fields Tierwise sets against the CRD's shape (monitoring.coreos.com/v1), strictly.
POD_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                        },
                    },
                },
            },
        },
    },
}


def validate_object(obj: dict[str, Any]) -> None:
    """Raise when ``obj`` does not match its kind's schema (strict: no unknown fields)."""
    if obj["kind"] == "PodMonitor":
        jsonschema.validate(obj, POD_MONITOR_SCHEMA)
        # metadata is validated like any other object's through a ConfigMap wrapper.
        meta_only = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
        kubernetes_validate.validate(meta_only, KUBERNETES_VERSION, strict=True)
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def load_md(path: Path) -> ModelDeployment:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    (raw,) = [d for d in docs if d.get("kind") == "ModelDeployment"]
    return ModelDeployment.model_validate(raw)


def input_files() -> list[Path]:
    return sorted(INPUTS.glob("*.yaml"))


def engine_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def flag_value(command: list[str], flag: str) -> str | None:
    """The value after ``flag`` (last occurrence wins, as argparse does), or None."""
    value = None
    for index, token in enumerate(command):
        if token == flag and index + 1 < len(command):
            value = command[index + 1]
        elif token.startswith(flag + "="):
            value = token.split("=", 1)[1]
    return value


_NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,70}[a-z0-9])?(\.[a-z0-9]{1,5})?", fullmatch=True)
_PRODUCTS = st.sampled_from(["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"])
_SAFE_ARGS = st.lists(
    st.sampled_from(
        [
            ["--max-model-len", "4096"],
            ["--context-length=2048"],
            ["--chunked-prefill-size", "8192"],
            ["--trust-remote-code"],
            ["--gpu-memory-utilization", "0.85"],
            ["--mem-fraction-static", "0.8"],
        ]
    ),
    max_size=3,
).map(lambda groups: [t for g in groups for t in g])
_ENV_VALUES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20
)


@st.composite
def model_deployment_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Raw ModelDeployment documents across engines, parallelism, sources and placement."""
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    dp = draw(st.integers(1, 3))
    uri = draw(
        st.sampled_from(
            [
                "hf://Qwen/Qwen3-8B",
                "pvc://weights/llama/8b",
                "pvc://weights",
                "s3://b/m",
                "gs://b/m",
            ]
        )
    )
    resources: dict[str, Any] = {}
    if draw(st.booleans()) or dp > 1:
        resources["gpus"] = tp * dp
    if draw(st.booleans()):
        resources["gpuProduct"] = draw(_PRODUCTS)
    resources["gpuResourceName"] = draw(st.sampled_from(["nvidia.com/gpu", "amd.com/gpu"]))
    low = draw(st.integers(0, 3))
    engine: dict[str, Any] = {
        "name": draw(st.sampled_from(["sglang", "vllm"])),
        "tensorParallelSize": tp,
        "prefixCaching": draw(st.booleans()),
        "args": draw(_SAFE_ARGS),
        "env": [{"name": "NOTE", "value": draw(_ENV_VALUES)}],
    }
    if draw(st.booleans()):
        engine["contextLength"] = draw(st.integers(256, 1_000_000))
    metadata: dict[str, Any] = {"name": draw(_NAMES)}
    if draw(st.booleans()):
        metadata["namespace"] = "llm"
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": metadata,
        "spec": {
            "model": {"uri": uri},
            "engine": engine,
            "resources": resources,
            "replicas": {"min": low, "max": low + draw(st.integers(0, 3)) or 1},
            "monitoring": {
                "podMonitor": draw(st.booleans()),
                "scrapeAnnotations": draw(st.booleans()),
            },
        },
    }


def model_deployments() -> st.SearchStrategy[ModelDeployment]:
    return model_deployment_specs().map(ModelDeployment.model_validate)
