"""Every source builds its table through ``table_from_config``: a policy document plus the
replicas found per ModelDeployment; the local files build the same document the operator
writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.router_config import RouterConfig, dump_config
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.router_config import router_config
from tierwise.router.discovery.files import ConfigFile, PolicyFiles, load_endpoints
from tierwise.router.discovery.sources import ConfigError
from tierwise.router.table import Replica, table_from_config
from tierwise.router.table_document import TableError

Policy = Callable[..., RoutingPolicy]


def _md(name: str, served: str, gpus: int = 1) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "model": {"uri": "hf://org/m", "servedName": served},
                "engine": {"name": "vllm", "tensorParallelSize": gpus},
                "cost": {"perGPUHour": 3.0},
            },
        }
    )


def _config(make_policy: Policy) -> RouterConfig:
    return router_config(make_policy(), {"md-mid": _md("md-mid", "served-mid", gpus=2)})


def test_replicas_become_endpoints_named_by_their_pod(make_policy: Policy) -> None:
    replicas = {
        "md-small": [Replica("http://10.0.0.1:8000", "small-0"), Replica("http://10.0.0.2:8000")],
        "md-mid": [Replica("http://10.0.0.3:8000/v1/", "mid-0")],
    }
    table = table_from_config(_config(make_policy), replicas)
    small, mid, _ = table.tiers
    assert [(e.url, e.replica) for e in small.endpoints] == [
        ("http://10.0.0.1:8000", "small-0"),
        ("http://10.0.0.2:8000", "http://10.0.0.2:8000"),  # no pod known: the URL
    ]
    assert [(e.url, e.upstream_model, e.replica) for e in mid.endpoints] == [
        ("http://10.0.0.3:8000", "served-mid", "mid-0")
    ]
    assert (mid.price.per_gpu_hour, mid.price.gpus_per_replica) == (3.0, 2)
    # a ModelDeployment the document has no facts for (no file given) serves its name
    assert small.endpoints[0].upstream_model == "md-small"


def test_a_url_listed_twice_is_one_endpoint(make_policy: Policy) -> None:
    replicas = {"md-small": [Replica("http://a:1", "p"), Replica("http://a:1/", "q")]}
    (endpoint,) = table_from_config(_config(make_policy), replicas).tier("small").endpoints
    assert endpoint.replica == "p"


@pytest.mark.parametrize(
    ("secrets_dir", "key_file"),
    [
        ("document", "/var/run/secrets/tierwise/frontier-key/api-key"),
        ("/mnt/s/", "/mnt/s/frontier-key/api-key"),
        (None, None),
    ],
)
def test_key_files_live_where_the_router_says(
    make_policy: Policy, secrets_dir: str | None, key_file: str | None
) -> None:
    config = _config(make_policy)
    if secrets_dir == "document":
        table = table_from_config(config, {})
    else:
        table = table_from_config(config, {}, secrets_dir=secrets_dir)
    assert table.tier("frontier").endpoints[0].api_key_file == key_file
    assert table.key_files() == ([key_file] if key_file else [])


def test_versions_follow_the_document_and_the_replicas(make_policy: Policy) -> None:
    config = _config(make_policy)
    one = {"md-small": [Replica("http://a:1")]}
    base = table_from_config(config, one)
    assert base.policy_version == config.version
    assert table_from_config(config, {"md-small": [Replica("http://a:1")]}).version == base.version
    assert table_from_config(config, {"md-small": [Replica("http://b:1")]}).version != base.version
    assert table_from_config(config, {"md-small": [Replica("http://a:1", "pod")]}).version != (
        base.version
    )
    moved = config.model_copy(update={"version": "other"})
    assert table_from_config(moved, one).version != base.version


def test_policy_files_build_the_operators_document(make_policy: Policy, tmp_path: Path) -> None:
    policy = make_policy()
    md = _md("md-mid", "served-mid", gpus=2)
    rp_path, md_path = tmp_path / "rp.yaml", tmp_path / "md.yaml"
    rp_path.write_text(yaml.safe_dump(policy.model_dump(mode="json", by_alias=True)))
    md_path.write_text(yaml.safe_dump(md.model_dump(mode="json", by_alias=True)))
    # the same document, except that local files never claim a ModelDeployment is missing
    expected = router_config(policy, {"md-mid": md}, report_missing=False)
    assert PolicyFiles(rp_path, [md_path]).current() == expected


def test_config_file_reads_the_configmap_document(make_policy: Policy, tmp_path: Path) -> None:
    config = _config(make_policy)
    path = tmp_path / "policy.json"
    path.write_text(dump_config(config))
    assert ConfigFile(path).current() == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a JSON or YAML document"),
        ("[1]", "must be a JSON object"),
        ('{"kind": "RouterConfig", "policy": {"name": "p", "namespace": "n"}}', "spec"),
        ('{"kind": "Nope", "policy": {"name": "p", "namespace": "n"}, "spec": {}}', "kind"),
    ],
)
def test_bad_documents_are_refused_naming_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(text)
    errors: list[ConfigError] = []
    source = ConfigFile(path, on_error=errors.append)
    for _ in range(2):
        with pytest.raises(ConfigError, match=message):
            source.current()
    assert len(errors) == 1  # counted once per version of the file, not per look


def test_endpoints_file_items_may_name_the_replica(tmp_path: Path) -> None:
    path = tmp_path / "ep.yaml"
    path.write_text(
        "a: http://127.0.0.1:1\n"
        "b: [http://127.0.0.1:2, {url: 'http://127.0.0.1:3', name: b-1}]\n"
        "c: {url: 'http://127.0.0.1:4', name: c-0}\n"
    )
    assert load_endpoints(path) == {
        "a": [Replica("http://127.0.0.1:1")],
        "b": [Replica("http://127.0.0.1:2"), Replica("http://127.0.0.1:3", "b-1")],
        "c": [Replica("http://127.0.0.1:4", "c-0")],
    }


@pytest.mark.parametrize(
    "text",
    [
        "a: ftp://x\n",
        "a: [{url: 'http://x:1', name: two words}]\n",
        "a: [{url: 'http://x:1', weight: 2}]\n",
        "a: [{name: only-a-name}]\n",
        "[1, 2]\n",
    ],
)
def test_bad_endpoints_files_name_the_entry(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ep.yaml"
    path.write_text(text)
    with pytest.raises(TableError):
        load_endpoints(path)


def test_a_tier_of_missing_model_deployments_is_absent_so_nothing_waits_for_it(
    make_policy: Policy,
) -> None:
    # the operator's document names md-small as missing; md-mid exists with no ready replica
    config = _config(make_policy)
    assert config.missing == ["md-small"]
    small, mid, frontier = table_from_config(config, {}).tiers
    assert (small.absent, mid.absent, frontier.absent) == (True, False, False)


def test_local_files_never_claim_a_model_deployment_is_missing(make_policy: Policy) -> None:
    config = router_config(make_policy(), {}, report_missing=False)
    assert config.missing == []
    assert not any(t.absent for t in table_from_config(config, {}).tiers)
