"""Volume folders written the way kubelet writes them: atomically, and kept in sync.

Why it exists: a router reads its policy and its API keys from mounted ConfigMap and
Secret files, and must never see a half-written one while kubelet updates them after a
change (a rotated key, a new policy). Kubelet's ``AtomicWriter`` solves that with a level
of indirection, copied here::

    <volume>/..2025_01_01_12_00_00.1234_7/   the current content (a fresh folder per update)
    <volume>/..data -> ..2025_01_01_12_00_00.1234_7
    <volume>/policy.json -> ..data/policy.json   (one link per top-level name)

An update writes a new timestamped folder, points a temporary ``..data_tmp`` link at it and
renames it over ``..data`` (one atomic ``rename``), adds or removes the top-level links, and
removes the old folder. A reader that opened ``policy.json`` keeps reading the old file; the
next open gets the new one. Paths given to processes are rewritten into a per-pod fake root
(:func:`mount`), where each mount path is a link to its volume (or a ``subPath`` in it).
"""

from __future__ import annotations

import datetime
import itertools
import os
import shutil
from pathlib import Path

from tierwise.local.podspec import FileSet, UnsupportedError

DATA = "..data"
_counter = itertools.count()


class AtomicDir:
    """One volume folder; :meth:`write` swaps in a new content atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self._last: FileSet | None = None
        self.updates = 0

    def write(self, files: FileSet) -> bool:
        """Make the folder hold exactly ``files``; False when it already does."""
        if files == self._last:
            return False
        stamp = datetime.datetime.now(tz=datetime.UTC).strftime("%Y_%m_%d_%H_%M_%S.%f")
        fresh = self.path / f"..{stamp}_{next(_counter)}"
        fresh.mkdir(mode=0o755)
        for relative, (content, mode) in files.items():
            target = fresh / _safe(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(mode)
        link = self.path / f"{DATA}_tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(fresh.name)
        old = self.path / DATA
        previous = os.readlink(old) if old.is_symlink() else None
        os.replace(link, old)
        names = {_safe(relative).split("/")[0] for relative in files}
        for name in names:
            visible = self.path / name
            if not visible.is_symlink():
                visible.symlink_to(f"{DATA}/{name}")
        for entry in self.path.iterdir():
            if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in names:
                entry.unlink()
        if previous is not None:
            shutil.rmtree(self.path / previous, ignore_errors=True)
        self._last = dict(files)
        self.updates += 1
        return True


def _safe(relative: str) -> str:
    """A volume-relative path that stays inside the volume (kubelet refuses the others)."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or parts[0].startswith(".."):
        raise UnsupportedError(
            f"volume file path {relative!r} is invalid (it must be relative, without '..')"
        )
    return "/".join(parts)


def mount(root: Path, mount_path: str, source: Path) -> None:
    """Make ``root + mount_path`` a link to ``source`` (the volume, or a subPath in it)."""
    target = root / mount_path.strip("/")
    if target.is_symlink() or target.exists():
        raise UnsupportedError(
            f"mount path {mount_path!r} is used twice or lies inside another mount (not emulated)"
        )
    for parent in target.parents:
        if parent == root:
            break
        if parent.is_symlink():
            raise UnsupportedError(
                f"mount path {mount_path!r} lies inside another mount (not emulated)"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)
