"""Lists narrowed by an equality label selector see relabels, deletions and re-creations.

The store answers ``k=v`` selectors from a label index instead of scanning every object
of the resource; the index must agree with a full scan after any sequence of writes.
"""

from __future__ import annotations

from typing import Any

import httpx
import kmock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.emulator import EmulatedApiServer
from tierwise.local.selectors import compile_selectors, required_label

CONFIGMAPS = kmock.resource("", "v1", "configmaps")
NAMESPACES = kmock.resource("", "v1", "namespaces")
PATH = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _names(client: httpx.Client, selector: str) -> list[str]:
    items = client.get(PATH, params={"labelSelector": selector}).json()["items"]
    return sorted(item["metadata"]["name"] for item in items)


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=a", ["one"]),
    ("app==b", ["two"]),
    ("app=a,tier=gold", ["one"]),
    ("app=a,tier=silver", []),
    ("app=", []),
    ("app=zzz", []),
    ("tier=gold,app in (a,b)", ["one"]),
    ("app=ünï", ["three"]),
    ("", ["one", "three", "two"]),
])
def test_equality_selectors_list_exactly_the_labelled_objects(
    cluster: EmulatedCluster, selector: str, expected: list[str]
) -> None:
    with httpx.Client(base_url=cluster.url) as client:
        for name, labels in [("one", {"app": "a", "tier": "gold"}), ("two", {"app": "b"}),
                             ("three", {"app": "ünï"})]:
            client.post(PATH, json={"metadata": {"name": name, "labels": labels}})
        assert _names(client, selector) == expected


def test_a_relabelled_object_leaves_its_old_label_and_joins_the_new(
    cluster: EmulatedCluster,
) -> None:
    with httpx.Client(base_url=cluster.url) as client:
        client.post(PATH, json={"metadata": {"name": "cm", "labels": {"app": "a"}}})
        client.patch(f"{PATH}/cm", json={"metadata": {"labels": {"app": "b"}}}, headers=MERGE)
        assert (_names(client, "app=a"), _names(client, "app=b")) == ([], ["cm"])
        client.delete(f"{PATH}/cm")
        assert _names(client, "app=b") == []
        client.post(PATH, json={"metadata": {"name": "cm", "labels": {"app": "a"}}})
        assert (_names(client, "app=a"), _names(client, "app=b")) == (["cm"], [])


_OPS = st.lists(st.tuples(
    st.sampled_from(["put", "delete"]),
    st.sampled_from(["x", "y", "z"]),
    st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b", ""]),
                    max_size=2),
), max_size=25)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_the_label_index_agrees_with_a_full_scan(
    ops: list[tuple[str, str, dict[str, str]]],
) -> None:
    store = EmulatedApiServer().store
    store.create(NAMESPACES, None, {"metadata": {"name": "default"}})
    for op, name, labels in ops:
        exists = any(key[2] == name for key, _ in store.iter_objects(CONFIGMAPS))
        body: dict[str, Any] = {"metadata": {"name": name, "labels": labels}}
        if op == "put" and exists:
            store.write(CONFIGMAPS, "default", name, body)
        elif op == "put":
            store.create(CONFIGMAPS, "default", body)
        elif exists:
            store.delete(CONFIGMAPS, "default", name)
    for selector in ("app=a", "app=b", "app=", "tier=a", "app=a,tier=b"):
        predicate = compile_selectors(selector, None)
        indexed, _ = store.list(CONFIGMAPS, "default", predicate, label=required_label(selector))
        scanned, _ = store.list(CONFIGMAPS, "default", predicate)
        assert sorted(o["metadata"]["name"] for o in indexed) == \
            sorted(o["metadata"]["name"] for o in scanned)
