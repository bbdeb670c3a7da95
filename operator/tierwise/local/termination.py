"""Graceful pod termination in the embedded cluster, the way the API server and kubelet do it.

Why it exists: on a real cluster a pod removed by a scale-down, a rollout or
``kubectl delete pod`` does not vanish: the API server marks it terminating, the
EndpointSlice controller flags its endpoint ``terminating`` (no new traffic), kubelet runs
the containers' ``preStop`` hooks, sends SIGTERM, waits out the grace period, sends SIGKILL,
and only then the pod object goes. "No request lost on scale-down" and a router's drain can
only be tested where the emulated cluster does the same. The sequence here:

1. A DELETE of a scheduled pod (by the Deployment controller, by garbage collection or by
   any client) sets ``deletionTimestamp`` (now + grace) and ``deletionGracePeriodSeconds``:
   the request's ``gracePeriodSeconds``, else the pod's ``terminationGracePeriodSeconds``,
   else 30 (:func:`deletion_grace`); 0, an unscheduled or a finished pod go at once.
2. :class:`PodTerminator` runs the preStop hooks it can: the ``sleep`` action and an exec of
   ``sleep N`` (also through ``sh -c``) keep the process running, and answering, for N
   seconds; other hooks are skipped (there is no container to exec into).
3. The pod turns unready, the workload backend stops the process: SIGTERM, then SIGKILL
   once the grace is over (when the hook used all of it, 2 more seconds, kubelet's minimum).
4. A DELETE with grace 0 removes the pod object (after its finalizers, if any).

Every wait is capped by ``max_grace`` (``EmulatedCluster(max_termination_grace=...)``,
5 s by default), so an engine's 120 s grace costs a test 5 s; 0 turns graceful deletion off
(pods and processes go at once, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kmock

from tierwise.local.store import ObjectStore

PODS = kmock.resource("", "v1", "pods")
DEFAULT_GRACE_SECONDS = 30
MINIMUM_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a preStop hook used up the grace (kubelet's)."""
_SHELL_SLEEP = re.compile(r"^\s*(?:exec\s+)?sleep\s+(\d+(?:\.\d+)?)\s*$")

StopFn = Callable[[Mapping[str, Any], float], Awaitable[None]]
"""Stops a pod's process: SIGTERM, then SIGKILL after the given seconds."""


def deletion_grace(pod: Mapping[str, Any], requested: int | None) -> int:
    """The grace period the API server gives a DELETE of ``pod`` (0: remove at once)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(0, requested)
    return max(0, int(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)))


def _hook_seconds(hook: Mapping[str, Any]) -> float:
    sleep = hook.get("sleep")
    if isinstance(sleep, Mapping):
        return float(sleep.get("seconds") or 0)
    command = [str(part) for part in (hook.get("exec") or {}).get("command") or []]
    if len(command) == 2 and command[0].rsplit("/", 1)[-1] == "sleep":
        with contextlib.suppress(ValueError):
            return float(command[1])
    if len(command) == 3 and command[1] == "-c" and (match := _SHELL_SLEEP.match(command[2])):
        return float(match.group(1))
    return 0.0


def pre_stop_seconds(pod: Mapping[str, Any]) -> float:
    """How long the pod's preStop hooks keep it running (they run in parallel: the longest)."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    hooks = [((c.get("lifecycle") or {}).get("preStop") or {}) for c in containers]
    return max((_hook_seconds(hook) for hook in hooks), default=0.0)


@dataclass(frozen=True)
class TerminationTimes:
    pre_stop: float
    """Seconds the process keeps running before SIGTERM."""
    kill_after: float
    """Seconds between SIGTERM and SIGKILL."""


def termination_times(pod: Mapping[str, Any], max_grace: float) -> TerminationTimes:
    meta = pod.get("metadata") or {}
    budget = min(float(meta.get("deletionGracePeriodSeconds") or 0), max_grace)
    hook = min(pre_stop_seconds(pod), budget)
    return TerminationTimes(hook, max(budget - hook, min(MINIMUM_KILL_GRACE, budget)))


def _unready(status: Mapping[str, Any]) -> dict[str, Any]:
    conditions = [
        dict(c, status="False") if c.get("type") in ("Ready", "ContainersReady") else dict(c)
        for c in status.get("conditions") or []
    ]
    containers = [dict(c, ready=False) for c in status.get("containerStatuses") or []]
    return dict(status, conditions=conditions, containerStatuses=containers)


class PodTerminator:
    """Runs the termination of every terminating pod once (see module docs)."""

    def __init__(self, store: ObjectStore, stop: StopFn, *, max_grace: float) -> None:
        self.store = store
        self.stop = stop
        self.max_grace = max_grace
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: set[str] = set()

    def begin(self, pod: Mapping[str, Any]) -> None:
        """Start terminating ``pod`` if it is terminating and not handled yet."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        if not meta.get("deletionTimestamp") or uid in self._tasks or uid in self._finished:
            return
        task = asyncio.create_task(self._terminate(pod), name=f"terminate-{meta.get('name')}")
        self._tasks[uid] = task
        task.add_done_callback(lambda _: self._done(uid))

    def sweep(self, pods: Iterable[Mapping[str, Any]]) -> None:
        """Begin what was missed; forget finished pods that are gone."""
        alive: set[str] = set()
        for pod in pods:
            alive.add(str(pod["metadata"].get("uid")))
            self.begin(pod)
        self._finished &= alive

    def _done(self, uid: str) -> None:
        self._tasks.pop(uid, None)
        self._finished.add(uid)

    async def _terminate(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        namespace, name = meta.get("namespace"), str(meta["name"])
        times = termination_times(pod, self.max_grace)
        try:
            await asyncio.sleep(times.pre_stop)
        except asyncio.CancelledError:  # the cluster is stopping: stop the process now
            await self.stop(pod, 0.0)
            raise
        with contextlib.suppress(kmock.KubernetesError):  # gone meanwhile
            current = self.store.get(PODS, namespace, name, shared=True)
            if current["metadata"].get("uid") == meta.get("uid"):
                self.store.write(
                    PODS,
                    namespace,
                    name,
                    dict(current, status=_unready(current.get("status") or {})),
                    subresource="status",
                    manager="kubelet",
                )
        await self.stop(pod, times.kill_after)
        with contextlib.suppress(kmock.KubernetesError):
            current = self.store.get(PODS, namespace, name, shared=True)
            if current["metadata"].get("uid") == meta.get("uid"):
                self.store.delete(PODS, namespace, name, grace_period=0)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
