"""The four PATCH flavours of the Kubernetes API, applied to plain dicts.

kmock 0.8 merges every patch as a dict update: JSON-patch ``test`` operations
fail with HTTP 500, strategic-merge patches replace lists, and server-side
apply changes nothing. This module gives each content type its own semantics:

* ``application/json-patch+json`` — RFC 6902 (add, remove, replace, move, copy,
  test); a failed ``test`` raises :class:`PatchTestFailedError` (the API answers 422).
* ``application/merge-patch+json`` — RFC 7386 (``null`` deletes a key).
* ``application/strategic-merge-patch+json`` — merge-patch, except that lists of
  objects that all carry a ``name`` key (containers, env, ports, volumes…) are
  merged by that key, and ``$patch: delete`` items remove the matching entry.
  Real strategic merge reads the merge key of each field from Go struct tags;
  the ``name`` heuristic covers the fields the operator touches.
* ``application/apply-patch+yaml`` — here only "merge the applied fields" (maps
  merge recursively, keyed lists merge by ``name``, other lists are replaced), used
  for an apply to the ``scale`` subresource. An apply to an object goes through
  :mod:`tierwise.local.ownership` instead (managedFields, conflicts, removal of
  fields a manager stopped applying, associative lists by their real keys).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


class PatchError(ValueError):
    """A malformed patch or a path that does not exist (the API answers 422)."""


class PatchTestFailedError(PatchError):
    """A JSON-patch ``test`` operation did not hold (the API answers 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value, never mutates inputs."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _keyed(items: Any) -> bool:
    return (
        isinstance(items, list)
        and bool(items)
        and all(isinstance(item, Mapping) and "name" in item for item in items)
    )


def _merge_keyed_lists(old: list[Any], new: list[Any], *, strategic: bool) -> list[Any]:
    result = [copy.deepcopy(item) for item in old]
    index = {item["name"]: pos for pos, item in enumerate(result)}
    removed: set[str] = set()
    for item in new:
        if strategic and item.get("$patch") == "delete":
            removed.add(item["name"])
        elif item["name"] in index:
            pos = index[item["name"]]
            result[pos] = _merge_maps(result[pos], item, strategic=strategic)
        else:
            index[item["name"]] = len(result)
            result.append(_merge_maps({}, item, strategic=strategic))
    return [item for item in result if item.get("name") not in removed]


def _merge_maps(old: Any, new: Any, *, strategic: bool) -> Any:
    if not isinstance(new, Mapping):
        return copy.deepcopy(new)
    result = dict(old) if isinstance(old, Mapping) else {}
    for key, value in new.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and _keyed(value) and _keyed(result.get(key)):
            result[key] = _merge_keyed_lists(result[key], value, strategic=strategic)
        else:
            result[key] = _merge_maps(result.get(key), value, strategic=strategic)
    return result


def strategic_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> Any:
    """Merge-patch with keyed-list merging by ``name`` (see the module docstring)."""
    return _merge_maps(target, patch, strategic=True)


def apply_merge(target: Mapping[str, Any], applied: Mapping[str, Any]) -> Any:
    """Merge an applied configuration into the live object (server-side apply)."""
    return _merge_maps(target, applied, strategic=False)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, Mapping) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise PatchError(f"path /{'/'.join(parts)} does not exist")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent = _resolve(doc, parts[:-1])
    key = parts[-1]
    if isinstance(parent, dict):
        parent[key] = copy.deepcopy(value)
    elif isinstance(parent, list):
        pos = len(parent) if key == "-" else int(key) if key.isdigit() else -1
        if not 0 <= pos <= len(parent):
            raise PatchError(f"index {key!r} is out of range")
        parent.insert(pos, copy.deepcopy(value))
    else:
        raise PatchError(f"cannot add to a scalar at /{'/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, parts[:-1])
    _resolve(parent, parts[-1:])  # raises if absent
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        del parent[int(parts[-1])]
    return doc


def _apply_op(doc: Any, op: Mapping[str, Any]) -> Any:
    kind = op.get("op")
    parts = _pointer(str(op.get("path", "")))
    if kind == "test":
        try:
            actual = _resolve(doc, parts)
        except PatchError as e:
            raise PatchTestFailedError(f"testing value {op.get('path')} failed: {e}") from e
        if actual != op.get("value"):
            raise PatchTestFailedError(f"testing value {op.get('path')} failed: test failed")
        return doc
    if kind == "add":
        return _add(doc, parts, op.get("value"))
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "replace":
        _resolve(doc, parts)
        return _add(_remove(doc, parts), parts, op.get("value")) if parts else op.get("value")
    if kind in ("move", "copy"):
        source = _pointer(str(op.get("from", "")))
        value = copy.deepcopy(_resolve(doc, source))
        if kind == "move":
            doc = _remove(doc, source)
        return _add(doc, parts, value)
    raise PatchError(f"unknown JSON-patch operation {kind!r}")


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch; atomic: the input is never mutated."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, Mapping):
            raise PatchError(f"a JSON-patch operation must be an object, got {op!r}")
        doc = _apply_op(doc, op)
    return doc


def apply_patch(content_type: str, target: Mapping[str, Any], patch: Any) -> Any:
    """Dispatch on the PATCH content type."""
    if content_type == JSON_PATCH:
        return json_patch(target, patch)
    if not isinstance(patch, Mapping):
        raise PatchError(f"a {content_type} patch must be an object")
    if content_type == MERGE_PATCH:
        return merge_patch(target, patch)
    if content_type == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(target, patch)
    if content_type == APPLY_PATCH:
        return apply_merge(target, patch)
    raise PatchError(f"unsupported patch type {content_type!r}")
