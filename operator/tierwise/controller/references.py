"""Whether the Secrets and PersistentVolumeClaims a spec names exist, asked cheaply.

Why it exists: a reconcile only needs to know that a referenced Secret exists, never its
data. The question goes out as a metadata-only GET (PartialObjectMetadata), so no Secret
value reaches the operator, and a found object is remembered for ``found_ttl_s``: the
reconcile of an unchanged spec asks the API server nothing. A missing one is never
remembered (the reconcile that waits for it asks again), so it is noticed as soon as it
appears; one deleted later is noticed within ``found_ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tierwise.controller.kube import KubeClient
from tierwise.controller.resources import Resource

FOUND_TTL_S = 300.0


@dataclass
class ReferenceChecks:
    kube: KubeClient
    found_ttl_s: float = FOUND_TTL_S
    clock: Callable[[], float] = time.monotonic
    _found: dict[tuple[str, str, str], float] = field(default_factory=dict)

    async def exists(self, resource: Resource, namespace: str, name: str) -> bool:
        key = (resource.kind, namespace, name)
        seen = self._found.get(key)
        now = self.clock()
        if seen is not None and now - seen < self.found_ttl_s:
            return True
        found = await self.kube.exists(resource, namespace, name)
        if found:
            self._found[key] = now
        else:
            self._found.pop(key, None)
        return found
