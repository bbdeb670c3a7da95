"""Field sets: which fields of an object a value sets, how two objects differ, FieldsV1.

Server-side apply tracks, per field manager, the set of fields it owns. A field is a path
of FieldsV1 elements: ``f:name`` for a map key, ``k:{"name":"x"}`` for an item of a list
with keys (an *associative* list: containers by name, ports by containerPort and protocol),
and a set holds the *leaves* (scalars, atomic lists, empty maps) plus the items of
associative lists (owning an item means owning its existence; FieldsV1 writes it as
``".": {}``). Everything here is pure and works on JSON-shaped dicts that are never
mutated (the store's objects are immutable), so a diff can skip shared parts by identity.

Which lists are associative comes from the Go types' ``listType=map`` markers on the real
server; here a small table covers the built-in fields Tierwise's objects use
(:data:`LIST_KEYS`). Custom resources' lists are atomic (the CRD schema's
``x-kubernetes-list-type`` is not read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]
ITEM = object()
"""The value recorded for an associative list item's own path (its existence)."""

LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
"""Built-in associative lists by field name (``listType=map`` in the Kubernetes types)."""
_DEFAULTED_KEYS = {"protocol": "TCP"}
"""Key fields the real server defaults before it computes a key (a port without protocol
is the TCP port)."""

IGNORED: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",)}
    | {
        ("f:metadata", f"f:{name}")
        for name in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "selfLink",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    }
)
"""Fields nobody owns: the API server sets them (its ``stripMeta`` set, plus deletion)."""


@dataclass(frozen=True)
class ListRules:
    """Which lists of one resource are associative (see the module docstring)."""

    kind: str
    custom: bool = False

    def keys(self, field: str, items: list[Any]) -> tuple[str, ...] | None:
        """The key fields of the list ``field`` holding ``items``; None when atomic."""
        if self.custom or not all(isinstance(i, Mapping) for i in items):
            return None
        if not items:  # an empty list of a known associative field: no items, nothing owned
            return LIST_KEYS.get(field)
        if field == "ports":
            if all("containerPort" in i for i in items):
                keys: tuple[str, ...] | None = ("containerPort", "protocol")
            elif self.kind == "Service" and all("port" in i for i in items):
                keys = ("port", "protocol")
            else:
                keys = None
        else:
            keys = LIST_KEYS.get(field)
        complete = keys is not None and all(
            all(k in i or k in _DEFAULTED_KEYS for k in keys) for i in items
        )
        if not complete:
            return None
        return keys


def key_values(item: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: item.get(k, _DEFAULTED_KEYS.get(k)) for k in keys}


def item_element(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The FieldsV1 element of a list item: ``k:`` and its key fields as compact JSON."""
    values = key_values(item, keys)
    return "k:" + json.dumps(dict(sorted(values.items())), separators=(",", ":"))


def leaves(value: Any, rules: ListRules, prefix: Path = ()) -> dict[Path, Any]:
    """Every owned path under ``value`` (leaves and associative items) with its value."""
    out: dict[Path, Any] = {}
    _collect(value, rules, prefix, out)
    return out


def _collect(value: Any, rules: ListRules, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            if sub is not None:
                _collect_field(key, sub, rules, (*path, f"f:{key}"), out)
    elif path:
        out[path] = value


def _collect_field(
    field: str, value: Any, rules: ListRules, path: Path, out: dict[Path, Any]
) -> None:
    if isinstance(value, list) and (keys := rules.keys(field, value)) is not None:
        for item in value:
            item_path = (*path, item_element(item, keys))
            out[item_path] = ITEM
            _collect(item, rules, item_path, out)
    else:
        _collect(value, rules, path, out)


@dataclass(frozen=True)
class Diff:
    """Paths set or changed in the new object, and paths only the old one had."""

    present: frozenset[Path]
    removed: frozenset[Path]

    @property
    def changed(self) -> frozenset[Path]:
        return self.present | self.removed


def diff(old: Any, new: Any, rules: ListRules) -> Diff:
    """How ``new`` differs from ``old``, field by field (shared parts skipped by identity)."""
    present: set[Path] = set()
    removed: set[Path] = set()
    _diff(old, new, rules, (), present, removed)
    return Diff(frozenset(present), frozenset(removed))


def _same_scalar(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _diff(
    old: Any, new: Any, rules: ListRules, path: Path, present: set[Path], removed: set[Path]
) -> None:
    if old is new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping) and old and new:
        for key in {**old, **new}:
            a, b = old.get(key), new.get(key)
            sub = (*path, f"f:{key}")
            if a is None:
                present.update(leaves_of_field(key, b, rules, sub))
            elif b is None:
                removed.update(leaves_of_field(key, a, rules, sub))
            else:
                _diff_field(key, a, b, rules, sub, present, removed)
        return
    if isinstance(old, Mapping | list) or isinstance(new, Mapping | list):
        if old == new:
            return
        before, after = leaves(old, rules, path), leaves(new, rules, path)
        present.update(p for p, v in after.items() if p not in before or before[p] != v)
        removed.update(p for p in before if p not in after)
        return
    if not _same_scalar(old, new) and path:
        present.add(path)


def leaves_of_field(field: str, value: Any, rules: ListRules, path: Path) -> Iterable[Path]:
    out: dict[Path, Any] = {}
    if value is not None:
        _collect_field(field, value, rules, path, out)
    return out.keys()


def _diff_field(
    field: str, a: Any, b: Any, rules: ListRules, path: Path, present: set[Path], removed: set[Path]
) -> None:
    if a is b:
        return
    if isinstance(a, list) and isinstance(b, list):
        keys_a, keys_b = rules.keys(field, a), rules.keys(field, b)
        if keys_a is not None and keys_a == keys_b:
            old_items = {item_element(i, keys_a): i for i in a}
            new_items = {item_element(i, keys_a): i for i in b}
            for element, item in new_items.items():
                item_path = (*path, element)
                if element not in old_items:
                    present.add(item_path)
                    present.update(leaves(item, rules, item_path))
                else:
                    _diff(old_items[element], item, rules, item_path, present, removed)
            for element, item in old_items.items():
                if element not in new_items:
                    item_path = (*path, element)
                    removed.add(item_path)
                    removed.update(leaves(item, rules, item_path))
            return
        if keys_a is None and keys_b is None:
            if a != b:
                present.add(path)
            return
        removed.update(leaves_of_field(field, a, rules, path))
        present.update(leaves_of_field(field, b, rules, path))
        return
    _diff(a, b, rules, path, present, removed)


# -- merging and removing ------------------------------------------------------------------
def merge(live: Any, applied: Any, rules: ListRules) -> Any:
    """The live object with an applied configuration merged in (server-side apply).

    Maps merge recursively, associative lists merge item by item (the live items the
    configuration does not name stay, in their place; new ones go at the end), atomic
    lists and scalars are replaced, ``null`` removes a key. Unchanged parts of ``live``
    are shared, not copied.
    """
    if not isinstance(applied, Mapping):
        return applied
    result = dict(live) if isinstance(live, Mapping) else {}
    for key, value in applied.items():
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, list) and isinstance(current, list):
            keys = rules.keys(key, value)
            if keys is not None and rules.keys(key, current) == keys:
                result[key] = _merge_items(current, value, keys, rules)
                continue
        result[key] = merge(current, value, rules) if isinstance(value, Mapping) else value
    return result


def _merge_items(
    live: list[Any], applied: list[Any], keys: tuple[str, ...], rules: ListRules
) -> list[Any]:
    result = list(live)
    index = {item_element(item, keys): pos for pos, item in enumerate(result)}
    for item in applied:
        element = item_element(item, keys)
        if element in index:
            result[index[element]] = merge(result[index[element]], item, rules)
        else:
            index[element] = len(result)
            result.append(merge({}, item, rules))
    return result


def remove(obj: Any, paths: Iterable[Path], rules: ListRules) -> Any:
    """``obj`` without the given fields (deepest first); absent paths are skipped.

    The fields inside a removed list item go with it (removing them first would change the
    item's key fields, and the item would no longer be found).
    """
    wanted = set(paths)
    outermost = [p for p in wanted if not any(p[:i] in wanted for i in range(1, len(p)))]
    for path in sorted(outermost, key=len, reverse=True):
        obj = _without(obj, path, rules)
    return obj


def _without(value: Any, path: Path, rules: ListRules, field: str = "") -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head.startswith("f:") and isinstance(value, Mapping):
        key = head[2:]
        if key not in value:
            return value
        result = dict(value)
        if rest:
            result[key] = _without(value[key], rest, rules, key)
        else:
            del result[key]
        return result
    if head.startswith("k:") and isinstance(value, list):
        keys = rules.keys(field, value)
        if keys is None:
            return value
        items = list(value)
        for pos, item in enumerate(items):
            if item_element(item, keys) == head:
                if rest:
                    items[pos] = _without(item, rest, rules)
                else:
                    del items[pos]
                return items
    return value


def present_in(obj: Any, path: Path, rules: ListRules) -> bool:
    """Whether the field at ``path`` exists in ``obj``."""
    value, field = obj, ""
    for element in path:
        if element.startswith("f:") and isinstance(value, Mapping) and element[2:] in value:
            field, value = element[2:], value[element[2:]]
        elif element.startswith("k:") and isinstance(value, list):
            keys = rules.keys(field, value)
            found = [i for i in value if keys is not None and item_element(i, keys) == element]
            if not found:
                return False
            value = found[0]
        else:
            return False
    return True


# -- FieldsV1 and readable paths -----------------------------------------------------------
def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 document of a field set (``".": {}`` where a path has children too)."""
    root: dict[str, Any] = {}
    marked: list[dict[str, Any]] = []
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
        marked.append(node)
    for node in marked:
        if node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(node[k]) for k in sorted(node)}


def from_fields_v1(document: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """The field set a FieldsV1 document describes (inverse of :func:`to_fields_v1`)."""
    paths: set[Path] = set()
    for element, child in document.items():
        if element == ".":
            paths.add(prefix)
        elif isinstance(child, Mapping) and child:
            paths |= from_fields_v1(child, (*prefix, element))
        else:
            paths.add((*prefix, element))
    return paths


def readable(path: Path) -> str:
    """A path as the API server prints it: ``.spec.containers[name="app"].image``."""
    parts: list[str] = []
    for element in path:
        if element.startswith("f:"):
            parts.append("." + element[2:])
        elif element.startswith("k:"):
            values = json.loads(element[2:])
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in values.items()) + "]")
        else:
            parts.append(f"[{element}]")
    return "".join(parts)
