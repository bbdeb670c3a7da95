"""A local kubelet for Tierwise's own pods: ``tierwise ...`` containers as real processes.

Why it exists: the RoutingPolicy reconciler turns a policy into a router Deployment whose
container runs ``tierwise router --config-map ... --discovery kubernetes ...`` with its policy
and API keys mounted from a ConfigMap and Secrets. Integration tests and the demo need that
router for real — watching the emulated API, reading the mounted files, serving on a port —
not a fake pod. :class:`TierwisePodBackend` runs the container the way kubelet would, on
this machine, as ``python -m tierwise.cli <args>``:

* the environment: the container's ``env``/``envFrom`` (values, ``fieldRef``s,
  ``secretKeyRef``/``configMapKeyRef``), ``KUBECONFIG`` set to the emulated cluster's (so
  the process's API client talks to it), ``TMPDIR`` to a volume mounted at ``/tmp``;
* the volumes (:mod:`tierwise.local.podspec`) written under a per-pod folder and kept in sync
  with the store every ``sync_interval`` seconds with kubelet's atomic swap
  (:mod:`tierwise.local.kubelet_files`): a rotated Secret shows in its file within about a
  second (kubelet takes up to a minute; tests want it sooner);
* the command line: ``$(VAR)`` expanded; absolute paths under a mount path (or a folder
  holding one) rewritten into the pod's fake root; ``--host X`` to 127.0.0.1 and ``--port N``
  to a free local port (the pod's ``local.tierwise.dev/port``, as for engine pods);
* readiness from the ``readinessProbe`` (``httpGet`` path or ``tcpSocket`` on the local port;
  none: ready while running); an exit makes the pod ``CrashLoopBackOff`` (not restarted);
* a missing ConfigMap/Secret keeps the pod ``ContainerCreating`` (or
  ``CreateContainerConfigError`` for env) until it appears, as on a cluster.

The container it runs is the first native sidecar (init container with ``restartPolicy:
Always``) or container whose command is ``tierwise``; other pods go to ``others``
(instant fakes by default). One pod is one process: the other containers are not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import kmock

from tierwise.local.kubelet_files import AtomicDir, mount
from tierwise.local.podspec import (
    NotReadyError,
    UnsupportedError,
    container_env,
    expand,
    rewrite_args,
    under,
    volume_files,
)
from tierwise.local.processes import free_port
from tierwise.local.termination import PODS
from tierwise.local.workloads import (
    ClusterHandle,
    FakeBackend,
    PodEndpoint,
    PodHealth,
    PodInfo,
    PodState,
    WorkloadBackend,
)

ENTRY_POINT = "tierwise"
HOST = "127.0.0.1"
_CLUSTER_ENV = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG")
_RESOURCES = {
    "ConfigMap": kmock.resource("", "v1", "configmaps"),
    "Secret": kmock.resource("", "v1", "secrets"),
}


def tierwise_container(template: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The container running Tierwise's entry point (a native sidecar first), or None."""
    spec = template.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*sidecars, *(spec.get("containers") or [])]:
        command = [str(part) for part in container.get("command") or []]
        if command and command[0].rsplit("/", 1)[-1] == ENTRY_POINT:
            found: Mapping[str, Any] = container
            return found
    return None


def _argv(container: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]


def _wants_port(argv: list[str]) -> bool:
    return any(a == "--port" or a.startswith("--port=") for a in argv)


@dataclass
class _LocalPod:
    info: PodInfo
    container: Mapping[str, Any]
    folder: Path
    port: int | None
    volumes: dict[str, AtomicDir] = field(default_factory=dict)
    mounts: dict[str, Path] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    log: IO[bytes] | None = None
    failure: str | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.folder / "root"


class TierwisePodBackend:
    """Tierwise pods as local processes (module docs); other pods go to ``others``."""

    def __init__(
        self,
        *,
        others: WorkloadBackend | None = None,
        sync_interval: float = 0.5,
        python: str = sys.executable,
        stop_timeout: float = 5.0,
    ) -> None:
        self.others: WorkloadBackend = others if others is not None else FakeBackend()
        self.sync_interval = sync_interval
        self.python = python
        self.stop_timeout = stop_timeout
        self._cluster: ClusterHandle | None = None
        self._folder: Path | None = None
        self._pods: dict[tuple[str, str], _LocalPod] = {}
        self._other_pods: set[tuple[str, str]] = set()
        self._sync_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def bind(self, cluster: ClusterHandle) -> None:
        self._cluster = cluster
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tierwise-kubelet-"))

    def pod_folder(self, namespace: str, name: str) -> Path:
        """Where a pod's volumes (``volumes/``), fake root (``root/``) and log live."""
        return self._pods[(namespace, name)].folder

    @property
    def folder(self) -> Path | None:
        """The temporary folder holding every pod's files (removed by :meth:`aclose`)."""
        return self._folder

    def command_line(self, namespace: str, name: str) -> list[str]:
        """The argv the pod's process was started with (empty before it starts)."""
        return list(self._pods[(namespace, name)].argv)

    def logs(self, namespace: str, name: str) -> str:
        """The pod's output so far (stdout and stderr), as ``kubectl logs`` would show."""
        path = self._pods[(namespace, name)].folder / "container.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- WorkloadBackend -----------------------------------------------------------------------
    async def start(self, pod: PodInfo) -> PodEndpoint:
        key = (pod.namespace, pod.name)
        container = tierwise_container(pod.template)
        if container is None:
            self._other_pods.add(key)
            return await self.others.start(pod)
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tierwise-kubelet-"))
        folder = self._folder / pod.namespace / pod.name
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port(HOST) if _wants_port(_argv(container)) else self._container_port(container)
        local = _LocalPod(pod, container, folder, port)
        if self._cluster is None:
            local.failure = (
                "Tierwise pods run only in an EmulatedCluster, which binds this "
                "backend to its API (bind() was not called)"
            )
        self._pods[key] = local
        if self._sync_task is None:
            self._sync_task = asyncio.create_task(self._sync_forever(), name="tierwise-kubelet")
        return PodEndpoint(ip=HOST, port=port)

    @staticmethod
    def _container_port(container: Mapping[str, Any]) -> int | None:
        ports = container.get("ports") or []
        return int(ports[0]["containerPort"]) if ports and "containerPort" in ports[0] else None

    async def state(self, pod: PodInfo) -> PodState:
        key = (pod.namespace, pod.name)
        if key in self._other_pods:
            return await self.others.state(pod)
        local = self._pods.get(key)
        if local is None:
            return PodState(PodHealth.FAILING, "ContainerCannotRun", "no process for this pod")
        if local.failure is None and local.process is None:
            try:
                await self._launch(local)
            except NotReadyError as e:
                return PodState(PodHealth.STARTING, e.reason, str(e))
            except (UnsupportedError, OSError) as e:
                local.failure = str(e)
        if local.failure is not None or local.process is None:
            return PodState(PodHealth.FAILING, "CreateContainerError", local.failure)
        code = local.process.returncode
        if code is not None:
            tail = self.logs(*key).strip().splitlines()[-1:] or [""]
            return PodState(
                PodHealth.FAILING,
                "CrashLoopBackOff",
                f"the process exited with code {code}: {tail[0][:300]}",
                restarts=1,
            )
        return PodState(PodHealth.READY if await self._probe(local) else PodHealth.STARTING)

    async def stop(self, pod: PodInfo, grace: float | None = None) -> None:
        key = (pod.namespace, pod.name)
        if key in self._other_pods:
            self._other_pods.discard(key)
            await self.others.stop(pod, grace)
            return
        local = self._pods.pop(key, None)
        if local is None:
            return
        try:
            if local.process is not None:
                await _stop_group(local.process, self.stop_timeout if grace is None else grace)
        finally:
            if local.log is not None:
                local.log.close()
            for sub in ("root", "volumes"):
                shutil.rmtree(local.folder / sub, ignore_errors=True)

    async def aclose(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        for namespace, name in list(self._pods):
            await self.stop(PodInfo(namespace=namespace, name=name, deployment=""))
        await self.others.aclose()
        self._other_pods.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # -- running the container -----------------------------------------------------------------
    def _lookup(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        assert self._cluster is not None
        try:
            return self._cluster.store.get(_RESOURCES[kind], namespace, name, shared=True)
        except kmock.KubernetesError:
            return None

    def _pod_object(self, local: _LocalPod) -> dict[str, Any]:
        assert self._cluster is not None
        try:
            pod = self._cluster.store.get(PODS, local.info.namespace, local.info.name)
        except kmock.KubernetesError as e:
            raise NotReadyError("ContainerCreating", "the pod object does not exist yet") from e
        status = dict(pod.get("status") or {})
        status.setdefault("podIP", HOST)
        status.setdefault("hostIP", HOST)
        return dict(pod, status=status)

    def _sync_volumes(self, local: _LocalPod, pod: Mapping[str, Any]) -> None:
        """Write every volume the container mounts (raises NotReadyError / UnsupportedError)."""
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        for volume_mount in local.container.get("volumeMounts") or []:
            name = volume_mount.get("name")
            if name not in volumes:
                raise UnsupportedError(f"volumeMount {name!r} names no volume of the pod")
            files = volume_files(volumes[name], pod, self._lookup)
            folder = local.folder / "volumes" / str(name)
            if files is None:
                folder.mkdir(parents=True, exist_ok=True)
                continue
            atomic = local.volumes.get(str(name))
            if atomic is None:
                atomic = local.volumes[str(name)] = AtomicDir(folder)
            atomic.write(files)

    def _mount(self, local: _LocalPod) -> None:
        for volume_mount in local.container.get("volumeMounts") or []:
            path = str(volume_mount.get("mountPath"))
            if path in local.mounts:
                continue
            source = local.folder / "volumes" / str(volume_mount.get("name"))
            if volume_mount.get("subPath"):
                source = source / str(volume_mount["subPath"])
            mount(local.root, path, source)
            local.mounts[path] = source

    def _environment(self, local: _LocalPod, env: Mapping[str, str]) -> dict[str, str]:
        assert self._cluster is not None
        mounts = list(local.mounts)
        out = {k: v for k, v in os.environ.items() if k not in _CLUSTER_ENV}
        out.update({k: f"{local.root}{v}" if under(v, mounts) else v for k, v in env.items()})
        out["KUBECONFIG"] = str(self._cluster.kubeconfig_path)
        if "/tmp" in local.mounts:
            out["TMPDIR"] = str(local.mounts["/tmp"])
        return out

    async def _launch(self, local: _LocalPod) -> None:
        pod = self._pod_object(local)
        self._sync_volumes(local, pod)
        self._mount(local)
        env = container_env(local.container, pod, self._lookup)
        argv = rewrite_args(
            [expand(a, env) for a in _argv(local.container)],
            root=str(local.root),
            mounts=list(local.mounts),
            port=local.port,
        )
        local.log = (local.folder / "container.log").open("ab")
        local.argv = [self.python, "-m", "tierwise.cli", *argv[1:]]
        local.process = await asyncio.create_subprocess_exec(
            *local.argv,
            stdin=subprocess.DEVNULL,
            stdout=local.log,
            stderr=subprocess.STDOUT,
            env=self._environment(local, env),
            cwd=local.folder,
            start_new_session=True,
        )

    async def _probe(self, local: _LocalPod) -> bool:
        probe = local.container.get("readinessProbe") or {}
        port = local.port
        if "httpGet" in probe and port is not None:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1))
            url = f"http://{HOST}:{port}{probe['httpGet'].get('path') or '/'}"
            try:
                async with self._session.get(url) as response:
                    return response.status < 400
            except (aiohttp.ClientError, TimeoutError):
                return False
        if "tcpSocket" in probe and port is not None:
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
        return True

    async def _sync_forever(self) -> None:
        """Keep running pods' volumes equal to the store (kubelet's periodic sync)."""
        while True:
            await asyncio.sleep(self.sync_interval)
            for local in list(self._pods.values()):
                if local.process is None or local.process.returncode is not None:
                    continue
                with contextlib.suppress(NotReadyError, UnsupportedError, OSError):
                    # kubelet keeps the last content when a source goes missing
                    self._sync_volumes(local, self._pod_object(local))


async def _stop_group(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``grace`` s (or at once when the
    leader exits: a container's processes end with it); always reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    finally:  # also when cancelled: the cluster is stopping, leave nothing behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
