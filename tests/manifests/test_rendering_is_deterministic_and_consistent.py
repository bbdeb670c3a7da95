"""Properties over generated specs: rendering is a pure function, and the three places
that encode a replica's GPUs (resource limits, the engine's parallelism flags, the node
selection) never disagree."""

from __future__ import annotations

from hypothesis import given, settings
from render_helpers import DP_FLAG, TP_FLAG, engine_container, flag_value, model_deployments

from tierwise.api.model_deployment import ModelDeployment
from tierwise.manifests import RenderSettings, render_model_deployment


@settings(max_examples=60, deadline=None)
@given(model_deployments())
def test_rendering_twice_gives_identical_objects(md: ModelDeployment) -> None:
    again = ModelDeployment.model_validate(md.model_dump(mode="json", by_alias=True))
    assert render_model_deployment(md) == render_model_deployment(again)


@settings(max_examples=100, deadline=None)
@given(model_deployments())
def test_gpu_limits_parallelism_flags_and_node_selection_agree(md: ModelDeployment) -> None:
    container = engine_container(render_model_deployment(md))
    engine = md.spec.engine.name.value
    resource = md.spec.resources.gpu_resource_name
    limit = int(container["resources"]["limits"][resource])
    assert (
        container["resources"]["requests"][resource] == container["resources"]["limits"][resource]
    )

    tp = int(flag_value(container["command"], TP_FLAG[engine]) or 0)
    dp = int(flag_value(container["command"], DP_FLAG[engine]) or 1)
    assert tp == md.spec.engine.tensor_parallel_size
    assert limit == tp * dp


@settings(max_examples=100, deadline=None)
@given(model_deployments())
def test_gpu_product_selects_nodes_and_gpu_taint_is_tolerated(md: ModelDeployment) -> None:
    objects = render_model_deployment(md)
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    label = RenderSettings().gpu_product_label
    assert pod.get("nodeSelector", {}).get(label) == md.spec.resources.gpu_product
    taint = {
        "key": md.spec.resources.gpu_resource_name,
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    assert taint in pod["tolerations"]
