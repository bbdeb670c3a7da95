"""Field sets (pure): FieldsV1 round trips, readable paths, diffs that see list items."""

from __future__ import annotations

import copy

from tierwise.local.fieldsets import (
    ListRules,
    diff,
    from_fields_v1,
    leaves,
    readable,
    remove,
    to_fields_v1,
)
from tierwise.local.testing import deployment

RULES = ListRules("Deployment")


def test_fieldsv1_round_trips_and_marks_items_with_a_dot() -> None:
    paths = set(leaves(deployment("web"), RULES))
    document = to_fields_v1(paths)
    assert from_fields_v1(document) == paths
    container = document["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"engine"}']
    assert container["."] == {}
    assert container["f:image"] == {}


def test_readable_paths_print_keys_as_the_api_server_does() -> None:
    path = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:targetPort")
    assert readable(path) == '.spec.ports[port=80,protocol="TCP"].targetPort'


def test_a_diff_finds_changed_leaves_and_added_or_removed_items() -> None:
    old = deployment("web")
    new = copy.deepcopy(old)
    containers = new["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "engine:2"
    containers.append({"name": "proxy", "image": "p:1"})
    changes = diff(old, new, RULES)
    base = ("f:spec", "f:template", "f:spec", "f:containers")
    assert changes.present == {
        (*base, 'k:{"name":"engine"}', "f:image"),
        (*base, 'k:{"name":"proxy"}'),
        (*base, 'k:{"name":"proxy"}', "f:image"),
        (*base, 'k:{"name":"proxy"}', "f:name"),
    }
    assert changes.removed == frozenset()
    back = diff(new, old, RULES)
    assert back.removed == changes.present - {(*base, 'k:{"name":"engine"}', "f:image")}
    assert diff(old, copy.deepcopy(old), RULES).changed == frozenset()


def test_removing_an_item_removes_it_whole_and_leaves_the_input_alone() -> None:
    obj = deployment("web")
    item = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"engine"}')
    removed = remove(obj, [item, (*item, "f:name"), ("f:spec", "f:replicas")], RULES)
    assert removed["spec"]["template"]["spec"]["containers"] == []
    assert "replicas" not in removed["spec"]
    assert obj == deployment("web")
