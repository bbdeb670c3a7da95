"""What kubelet reads from a pod spec before it starts a container, without a container runtime.

Why it exists: the embedded cluster runs Tierwise's own pods (the router) as real local
processes (:mod:`tierwise.local.kubelet`), and a process started from a pod spec needs what
kubelet would give the container: environment variables (values, ``fieldRef``s to the pod,
``secretKeyRef``/``configMapKeyRef`` values, ``envFrom``), ``$(VAR)`` expansion in command
and args, and the files of its volumes. Everything here is pure: objects come in through a
:data:`Lookup` (the store, in the kubelet), so the rules are testable on plain dicts.

A volume becomes a :data:`FileSet` (relative path → content and mode); the kubelet writes it
with :class:`~tierwise.local.kubelet_files.AtomicDir`. A source that is missing (a ConfigMap,
a Secret, a key named in ``items``) raises :class:`NotReadyError` unless marked ``optional``, and
the pod stays ``ContainerCreating`` as on a cluster. Supported volume types: ``configMap``,
``secret``, ``projected`` (configMap, secret, downwardAPI, serviceAccountToken), ``downwardAPI``
and ``emptyDir``; any other raises :class:`UnsupportedError`.

Secrets are read from ``data`` (base64) and, since the emulator does not convert it as the
API server does, ``stringData``. The service account token is a dummy (the emulated API
accepts any token).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Lookup = Callable[[str, str, str], Mapping[str, Any] | None]
"""(kind ``ConfigMap``/``Secret``, namespace, name) → the object, or None when absent."""
FileSet = dict[str, tuple[bytes, int]]
"""Relative path in a volume → (content, file mode)."""

DEFAULT_MODE = 0o644
DUMMY_TOKEN = b"emulated"
ROOT_CA = "kube-root-ca.crt"
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class NotReadyError(Exception):
    """Something the container needs is missing (yet): the pod waits, as kubelet's does."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnsupportedError(Exception):
    """A pod feature the local kubelet cannot provide (the message says which)."""


# -- the downward API --------------------------------------------------------------------------
def field_value(pod: Mapping[str, Any], path: str) -> str:
    """A ``fieldRef`` value (``metadata.name``, ``status.podIP``, labels['k'], ...)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if match := _SUBSCRIPT.match(path):
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={json.dumps(str(v))}" for k, v in sorted(values.items()))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(p.get("ip", "") for p in status.get("podIPs") or []),
    }
    if path not in simple:
        raise UnsupportedError(f"fieldRef {path!r} is not emulated")
    return str(simple[path] or "")


# -- reading ConfigMaps and Secrets ------------------------------------------------------------
def _source(
    lookup: Lookup, kind: str, namespace: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    """All keys of a ConfigMap or Secret as bytes; None when absent and optional."""
    obj = lookup(kind, namespace, name)
    if obj is None and kind == "ConfigMap" and name == ROOT_CA:
        return {"ca.crt": b""}  # every namespace has it on a real cluster
    if obj is None:
        if optional:
            return None
        raise NotReadyError("ContainerCreating", f'{kind.lower()} "{name}" not found')
    out: dict[str, bytes] = {}
    if kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            out[key] = base64.b64decode(str(value))
        for key, value in (obj.get("stringData") or {}).items():
            out[key] = str(value).encode()
    else:
        for key, value in (obj.get("data") or {}).items():
            out[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            out[key] = base64.b64decode(str(value))
    return out


def _keyed(
    kind: str,
    name: str,
    values: Mapping[str, bytes],
    items: Iterable[Mapping[str, Any]],
    mode: int,
    optional: bool,
) -> FileSet:
    items = list(items)
    if not items:
        return {key: (value, mode) for key, value in values.items()}
    out: FileSet = {}
    for item in items:
        key = str(item.get("key"))
        if key not in values:
            if optional:
                continue
            raise NotReadyError(
                "ContainerCreating", f'{kind.lower()} "{name}" has no key "{key}" (named in items)'
            )
        out[str(item.get("path") or key)] = (values[key], int(item.get("mode") or mode))
    return out


def _object_files(
    kind: str, ref: Mapping[str, Any], namespace: str, lookup: Lookup, mode: int
) -> FileSet:
    name = str(
        ref.get("secretName") if kind == "Secret" and "secretName" in ref else ref.get("name")
    )
    optional = bool(ref.get("optional"))
    values = _source(lookup, kind, namespace, name, optional)
    if values is None:
        return {}
    return _keyed(kind, name, values, ref.get("items") or [], mode, optional)


def _downward_files(
    items: Iterable[Mapping[str, Any]], pod: Mapping[str, Any], mode: int
) -> FileSet:
    out: FileSet = {}
    for item in items:
        if "fieldRef" not in item:
            raise UnsupportedError(
                f"downwardAPI item {item.get('path')!r}: only fieldRef is emulated"
            )
        value = field_value(pod, str(item["fieldRef"].get("fieldPath")))
        out[str(item.get("path"))] = (value.encode(), int(item.get("mode") or mode))
    return out


def volume_files(
    volume: Mapping[str, Any], pod: Mapping[str, Any], lookup: Lookup
) -> FileSet | None:
    """The files of one volume (None: an empty writable folder, ``emptyDir``)."""
    namespace = str((pod.get("metadata") or {}).get("namespace"))
    name = volume.get("name")
    if "emptyDir" in volume:
        return None
    for kind, field in (("ConfigMap", "configMap"), ("Secret", "secret")):
        if field in volume:
            ref = volume[field] or {}
            return _object_files(
                kind, ref, namespace, lookup, int(ref.get("defaultMode") or DEFAULT_MODE)
            )
    if "downwardAPI" in volume:
        ref = volume["downwardAPI"] or {}
        return _downward_files(
            ref.get("items") or [], pod, int(ref.get("defaultMode") or DEFAULT_MODE)
        )
    if "projected" in volume:
        ref = volume["projected"] or {}
        mode = int(ref.get("defaultMode") or DEFAULT_MODE)
        out: FileSet = {}
        for source in ref.get("sources") or []:
            if "serviceAccountToken" in source:
                out[str(source["serviceAccountToken"].get("path") or "token")] = (DUMMY_TOKEN, mode)
            elif "configMap" in source:
                out.update(_object_files("ConfigMap", source["configMap"], namespace, lookup, mode))
            elif "secret" in source:
                out.update(_object_files("Secret", source["secret"], namespace, lookup, mode))
            elif "downwardAPI" in source:
                out.update(_downward_files(source["downwardAPI"].get("items") or [], pod, mode))
            else:
                raise UnsupportedError(
                    f"volume {name!r}: projected source {sorted(source)} is not emulated"
                )
        return out
    kinds = sorted(k for k in volume if k != "name")
    raise UnsupportedError(
        f"volume {name!r}: {', '.join(kinds) or 'no source'} volumes are not "
        "emulated (configMap, secret, projected, downwardAPI, emptyDir are)"
    )


# -- environment -------------------------------------------------------------------------------
def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables only, ``$$`` escapes a ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(replace, text)


def _env_value(
    var: Mapping[str, Any], pod: Mapping[str, Any], lookup: Lookup, env: Mapping[str, str]
) -> str | None:
    if "value" in var:
        return expand(str(var.get("value") or ""), env)
    source = var.get("valueFrom") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace"))
    if "fieldRef" in source:
        return field_value(pod, str(source["fieldRef"].get("fieldPath")))
    for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
        if field in source:
            ref = source[field]
            optional = bool(ref.get("optional"))
            try:
                values = _source(lookup, kind, namespace, str(ref.get("name")), optional)
            except NotReadyError as e:
                raise NotReadyError("CreateContainerConfigError", str(e)) from e
            key = str(ref.get("key"))
            if values is None or key not in values:
                if optional:
                    return None
                raise NotReadyError(
                    "CreateContainerConfigError",
                    f"couldn't find key {key} in {kind} {namespace}/{ref.get('name')}",
                )
            return values[key].decode()
    if "resourceFieldRef" in source:
        return "0"
    return ""


def container_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], lookup: Lookup
) -> dict[str, str]:
    """The container's environment: ``envFrom`` first, then ``env`` in order (later wins)."""
    env: dict[str, str] = {}
    namespace = str((pod.get("metadata") or {}).get("namespace"))
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if field in source:
                ref = source[field]
                try:
                    values = _source(
                        lookup, kind, namespace, str(ref.get("name")), bool(ref.get("optional"))
                    )
                except NotReadyError as e:
                    raise NotReadyError("CreateContainerConfigError", str(e)) from e
                for key, value in (values or {}).items():
                    env[prefix + key] = value.decode()
    for var in container.get("env") or []:
        resolved = _env_value(var, pod, lookup, env)
        if resolved is not None:
            env[str(var.get("name"))] = resolved
    return env


# -- command line ------------------------------------------------------------------------------
def under(path: str, mounts: Iterable[str]) -> bool:
    """Whether an absolute path is a mount path, inside one, or a folder holding one."""
    if not path.startswith("/"):
        return False
    clean = path.rstrip("/") or "/"
    return any(
        clean == m or clean.startswith(m + "/") or m.startswith(clean.rstrip("/") + "/")
        for m in mounts
    )


def rewrite_args(
    argv: list[str], *, root: str, mounts: Iterable[str], port: int | None, host: str = "127.0.0.1"
) -> list[str]:
    """Paths under mount paths into ``root``; ``--host`` to ``host``; ``--port`` to ``port``."""
    mounts = [m.rstrip("/") or "/" for m in mounts]
    out: list[str] = []
    forced = {"--host": host, "--port": None if port is None else str(port)}
    pending: str | None = None
    for arg in argv:
        if pending is not None:
            out.append(forced[pending] or arg)
            pending = None
            continue
        flag, eq, value = arg.partition("=")
        if flag in forced and forced[flag] is not None:
            if eq:
                out.append(f"{flag}={forced[flag]}")
            else:
                out.append(arg)
                pending = flag
            continue
        if eq and flag.startswith("-") and under(value, mounts):
            out.append(f"{flag}={root}{value}")
        elif under(arg, mounts):
            out.append(root + arg)
        else:
            out.append(arg)
    return out
