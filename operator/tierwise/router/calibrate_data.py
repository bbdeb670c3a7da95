"""Labelled traffic for ``tierwise route calibrate``: which tiers answered each prompt well.

Why it exists: a routing threshold is only as good as the labels behind it, and a bad
row silently skipped skews it. Every problem is refused with the file, the line and the
fix.

Formats (documented in docs/routing.md, "Calibrating the tier classifier")
    CSV (``.csv``): a header row with a ``prompt`` column and one column per tier,
    cheapest first; each tier cell says whether that tier answered the prompt well
    (``true``/``false``, ``1``/``0``, ``yes``/``no``, any case). An optional ``group``
    column (a topic, a customer, a source) keeps each group within one fold, so the
    held-out estimate is made on groups the model has not seen.

    JSON Lines (``.jsonl``): one object per line with the same names: ``{"prompt": "...",
    "small": true, "frontier": true, "group": "billing"}``; booleans (or 0/1). The tier
    order is the key order of the first line unless ``--tiers`` gives it.

``--tiers a,b`` picks and orders tier columns (cheapest first) in either format.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESERVED = ("prompt", "group")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class CalibrationDataError(ValueError):
    """The labelled data cannot be used; the message names the line and the fix."""


@dataclass(frozen=True, slots=True)
class LabelledSet:
    prompts: list[str]
    tiers: tuple[str, ...]
    """Tier names, cheapest first."""
    labels: list[tuple[bool, ...]]
    """Per prompt, per tier: answered well."""
    groups: list[str] | None
    sha256: str
    """Hash of the file's bytes (recorded in the artefact)."""

    def __len__(self) -> int:
        return len(self.prompts)


def read_labels(path: Path, tiers: Sequence[str] | None = None) -> LabelledSet:
    """Read ``path`` (CSV or JSONL by extension); raise :class:`CalibrationDataError`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalibrationDataError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalibrationDataError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path, text)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(path, text)
    else:
        raise CalibrationDataError(f"{path}: use a .csv or .jsonl file (see docs/routing.md)")
    return _assemble(path, rows, tiers, hashlib.sha256(raw).hexdigest())


Row = tuple[int, dict[str, Any], list[str]]
"""(line number, fields, field names in file order)"""


def _csv_rows(path: Path, text: str) -> Iterator[Row]:
    csv.field_size_limit(64 * 1024 * 1024)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CalibrationDataError(f"{path}: the file is empty; it needs a header row") from None
    except csv.Error as exc:
        raise CalibrationDataError(f"{path}: line 1: {exc}") from exc
    names = [h.strip() for h in header]
    try:
        for values in reader:
            line = reader.line_num
            if not values or values == [""]:
                continue
            if len(values) != len(names):
                raise CalibrationDataError(
                    f"{path}: line {line}: {len(values)} fields, the header has {len(names)}; "
                    "quote prompts that contain commas or newlines"
                )
            yield line, dict(zip(names, values, strict=True)), names
    except csv.Error as exc:
        raise CalibrationDataError(f"{path}: line {reader.line_num}: {exc}") from exc


def _jsonl_rows(path: Path, text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CalibrationDataError(f"{path}: line {number}: not JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise CalibrationDataError(f"{path}: line {number}: expected a JSON object")
        yield number, obj, list(obj)


def _assemble(
    path: Path, rows: Iterator[Row], tiers: Sequence[str] | None, digest: str
) -> LabelledSet:
    prompts: list[str] = []
    labels: list[tuple[bool, ...]] = []
    groups: list[str] = []
    order: tuple[str, ...] | None = tuple(tiers) if tiers else None
    has_group = False
    for line, fields, names in rows:
        if order is None:
            order = tuple(n for n in names if n not in RESERVED)
            _check_tiers(path, order, names)
            has_group = "group" in names
        elif not prompts:
            _check_tiers(path, order, names)
            has_group = "group" in names
        where = f"{path}: line {line}"
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise CalibrationDataError(f"{where}: 'prompt' is missing or empty")
        prompts.append(prompt)
        labels.append(tuple(_bool(fields.get(t), where, t) for t in order))
        if has_group:
            group = fields.get("group")
            groups.append("" if group is None else str(group))
    if order is None or not prompts:
        raise CalibrationDataError(f"{path}: no labelled rows")
    return LabelledSet(prompts, order, labels, groups if has_group else None, digest)


def _check_tiers(path: Path, tiers: tuple[str, ...], names: list[str]) -> None:
    if "prompt" not in names:
        raise CalibrationDataError(f"{path}: no 'prompt' column; name the prompt column prompt")
    missing = [t for t in tiers if t not in names]
    if missing:
        raise CalibrationDataError(
            f"{path}: tier column(s) {', '.join(missing)} missing; columns are {names}"
        )
    if len(tiers) < 2:
        raise CalibrationDataError(
            f"{path}: found tier column(s) {list(tiers)}; calibrate needs at least two tiers "
            "(columns after prompt, cheapest first)"
        )


def _bool(value: Any, where: str, tier: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CalibrationDataError(
        f"{where}: tier {tier!r} is {value!r}; write true or false (whether the tier "
        "answered this prompt well)"
    )
