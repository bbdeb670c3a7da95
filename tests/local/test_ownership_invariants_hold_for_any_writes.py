"""Field ownership invariants over random sequences of applies and updates (pure).

Whatever managers apply (with or without force) or update, in any order: an apply that
succeeds leaves every field it applied with the applied value; every field an entry owns
exists in the object; no entry is empty; a field no one applies any more and no one
updated is gone."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.local import ownership
from tierwise.local.fieldsets import ListRules, leaves, present_in

RULES = ListRules("Deployment")
MANAGERS = ("alice", "bob", "carol")


def _write(manager: str) -> ownership.Write:
    return ownership.Write(
        manager=manager, api_version="apps/v1", time="2026-01-01T00:00:00Z", rules=RULES,
        scope=lambda path: True,
    )  # fmt: skip


_keys = st.sampled_from(["a", "b", "c"])
_values = st.sampled_from(["1", "2"])
_containers = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["engine", "proxy"])},
        optional={"image": _values, "args": st.lists(_values, max_size=2)},
    ),
    max_size=2,
    unique_by=lambda c: c["name"],
)
_configs = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries({"labels": st.dictionaries(_keys, _values)}),
        "data": st.dictionaries(_keys, _values, min_size=1),
        "spec": st.fixed_dictionaries({"containers": _containers}),
    },
)
_steps = st.lists(
    st.tuples(st.sampled_from(["apply", "force", "update"]), st.sampled_from(MANAGERS), _configs),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(_steps)
def test_ownership_invariants(steps: list[tuple[str, str, dict[str, Any]]]) -> None:
    obj: Any = {"metadata": {"name": "x"}}
    entries: list[ownership.Entry] = []
    for kind, manager, config in steps:
        if kind == "update":
            new = ownership.apply([], obj, config, _write("scratch"), force=True)[0]
            entries = ownership.record_update(entries, obj, new, _write(manager))
            obj = new
        else:
            try:
                obj, entries = ownership.apply(
                    entries, obj, config, _write(manager), force=kind == "force"
                )
            except ownership.ConflictError as e:
                conflicts = e.conflicts
                assert kind == "apply"
                assert conflicts
                continue
            have = leaves(obj, RULES)
            for path, value in leaves(config, RULES).items():
                if value == {}:  # an empty map merges into the live one: it exists
                    assert present_in(obj, path, RULES)
                else:
                    assert have.get(path) == value, path
        for entry in entries:
            assert entry.fields
            assert all(present_in(obj, path, RULES) for path in entry.fields), entry
