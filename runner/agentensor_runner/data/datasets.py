"""Dataset loading (csv / jsonl / inline), seeded sampling and stratified splits.

A row that cannot become a case (missing input field, invalid UTF-8, bad JSON line) is kept as a
:class:`Case` with ``error`` set: the runner records it as an error row and carries on, so no row
silently disappears. A field missing from *every* row is a manifest error instead.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentensor_api import DatasetSpec, ManifestError, SplitSpec, canonical_json
from agentensor_api._limits import read_bounded

from .roots import DataRoots

MAX_DATASET_BYTES = 512 * 1024 * 1024
"""Refuse dataset files above 512 MiB: the runner holds cases in memory."""

MAX_CASE_ID_CHARS = 255
"""Longest case id: ``agentensor_case_results.case_id`` and ``agentensor_eval_cache.case_id`` are
``VARCHAR(255)``. PostgreSQL refuses a longer value where SQLite stores it, so a longer id is
shortened here, where the data enters, the same way on both (:func:`storable_case_id`)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One dataset case. ``error`` is set when the row itself is unusable."""

    case_id: str
    input: Any
    expected: Any
    row: dict[str, Any]
    error: str | None = None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _has_bad_utf8(value: Any) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _escape_nul(value: Any) -> Any:
    """``value`` with each NUL written as the six characters ``\\u0000`` (storable everywhere)."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {_escape_nul(k): _escape_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_nul(v) for v in value]
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return value


def storable_case_id(case_id: str) -> str:
    """``case_id`` if it fits :data:`MAX_CASE_ID_CHARS`, else its first 238 characters, ``~`` and
    16 hex digits of its sha256 (255 characters: distinct ids stay distinct, the same id always
    maps to the same value, so a resumed run finds its rows)."""
    if len(case_id) <= MAX_CASE_ID_CHARS:
        return case_id
    digest = hashlib.sha256(case_id.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    return f"{case_id[: MAX_CASE_ID_CHARS - 17]}~{digest}"


def _case_id(spec: DatasetSpec, row: dict[str, Any], i: int, err: str | None) -> tuple[str, str | None]:
    """Row ``i``'s case id (its ``idField`` value, else ``i``) and its error, which an id over
    :data:`MAX_CASE_ID_CHARS` sets (the id is then shortened by :func:`storable_case_id`)."""
    cid = str(row.get(spec.id_field)) if spec.id_field and row.get(spec.id_field) is not None else str(i)
    if len(cid) <= MAX_CASE_ID_CHARS:
        return cid, err
    short = storable_case_id(cid)
    why = (
        f"row {i}: its id ({spec.id_field}) has {len(cid)} characters, more than the {MAX_CASE_ID_CHARS} a "
        f"case id may hold; recorded as {short!r}"
    )
    return short, err or why


def _read_rows(spec: DatasetSpec, base_dir: Path, roots: DataRoots) -> list[tuple[dict[str, Any] | None, str | None]]:
    """The dataset's rows, each ``(row, None)`` or ``(row or None, why it is unusable)``.

    A file is decoded and parsed a line at a time (no decoded copy of the whole file, no list
    of its lines), and the keys of JSON objects are shared between rows, so the rows cost about
    their values: 100k JSONL rows of three fields hold about 55 MB instead of 90 MB
    (benchmarks/runner_memory.py).
    """
    if spec.inline is not None:
        return [(dict(r), None) for r in spec.inline]
    assert spec.path is not None
    path = roots.resolve(spec.path, "spec.dataset.path", base_dir)
    raw = read_bounded(path, MAX_DATASET_BYTES, field="spec.dataset.path", binary_check=True)
    if spec.format == "jsonl":
        return _jsonl_rows(io.BytesIO(raw))
    rows: list[tuple[dict[str, Any] | None, str | None]] = []
    # utf-8-sig: a byte-order mark (Excel's CSV export) must not become part of the first column name
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.DictReader(text)
    for n, rec in enumerate(reader, start=2):
        if None in rec:
            rows.append((None, f"line {n} has more cells than the header"))
        elif None in rec.values():
            missing = [k for k, v in rec.items() if v is None]
            rows.append(({k: v for k, v in rec.items() if v is not None}, f"line {n} has no cell for {missing}"))
        elif any(_has_bad_utf8(v) for v in rec.values() if v is not None):
            rows.append(({k: _clean(v) for k, v in rec.items()}, f"line {n} is not valid UTF-8"))
        else:
            rows.append((dict(rec), None))
    return rows


def _jsonl_rows(lines: io.BytesIO) -> list[tuple[dict[str, Any] | None, str | None]]:
    """JSON Lines, separated by ``\n`` only (``str.splitlines`` would also split on ``\x0b``,
    ``\x1c``...); a leading byte-order mark is dropped."""
    rows: list[tuple[dict[str, Any] | None, str | None]] = []
    keys: dict[str, str] = {}
    for n, raw_line in enumerate(lines, start=1):
        line = _decode(raw_line).removesuffix("\n").removesuffix("\r")
        if n == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        if _has_bad_utf8(line):
            rows.append((None, f"line {n} is not valid UTF-8"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            rows.append((None, f"line {n} is not valid JSON: {e.msg}"))
            continue
        if not isinstance(obj, dict):
            rows.append((None, f"line {n} is a JSON {type(obj).__name__}, expected an object"))
            continue
        rows.append(({keys.setdefault(k, k): v for k, v in obj.items()}, None))
    return rows


def load_cases(spec: DatasetSpec, *, base_dir: Path = Path("."), roots: DataRoots | None = None) -> list[Case]:
    """Read the dataset described by ``spec`` into cases.

    Args:
        spec: the manifest's ``spec.dataset``.
        base_dir: directory relative paths are resolved against (the manifest's folder).
        roots: folders granted beyond ``base_dir`` and paths denied (:class:`DataRoots`); the file
            must resolve, symlinks and ``..`` included, under ``base_dir`` or one of them.

    Returns:
        Cases in file order (after seeded sampling when ``limit`` is set).

    A row holding a NUL character, a CSV line with fewer cells than the header, invalid UTF-8
    or JSON, or an id longer than :data:`MAX_CASE_ID_CHARS` become error cases (their NULs written
    as ``\\u0000``, their ids shortened by :func:`storable_case_id`); a leading byte-order mark is
    dropped.

    Raises:
        ManifestError: ``spec.dataset.path`` outside the data roots or under ``/proc``, ``/sys``,
            ``/dev`` or a denied path (:meth:`DataRoots.resolve`), unreadable file (missing, a
            directory or a device, over 512 MiB counted as read, binary), empty dataset, or
            ``inputField``/``expectedField`` absent from every row (names the field and lists
            the columns that exist).
    """
    rows = _read_rows(spec, base_dir, roots or DataRoots())
    _check_fields(spec, rows)
    cases = [_case(spec, i, row or {}, err) for i, (row, err) in enumerate(rows)]
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise ManifestError("spec.dataset.idField", f"{spec.id_field!r} values are not unique")
    return _sample(cases, spec)


def _check_fields(spec: DatasetSpec, rows: list[tuple[dict[str, Any] | None, str | None]]) -> None:
    """Refuse a dataset with no row, or whose ``inputField``/``expectedField`` no usable row has.

    Raises:
        ManifestError: naming ``spec.dataset`` or the field, and listing the columns that exist.
    """
    good = [r for r, err in rows if r is not None and err is None]
    if not rows:
        raise ManifestError("spec.dataset", "the dataset has no rows")
    columns = sorted({k for r in good for k in r})
    for field_name, key in (("inputField", spec.input_field), ("expectedField", spec.expected_field)):
        if key is not None and good and not any(key in r for r in good):
            raise ManifestError(f"spec.dataset.{field_name}", f"no row has a field {key!r}; columns are {columns}")


def _case(spec: DatasetSpec, i: int, row: dict[str, Any], err: str | None) -> Case:
    """Row ``i`` as a case: NULs escaped, its id (shortened if too long), and ``error`` set for the
    first thing wrong with it (``err`` from reading, a NUL, a long id, a missing field)."""
    if _has_nul(row):
        row = _escape_nul(row)
        err = err or f"row {i} holds a NUL character (U+0000), which PostgreSQL cannot store; shown as \\u0000"
    cid, err = _case_id(spec, row, i, err)
    if err is None and spec.input_field not in row:
        err = f"row {i} has no field {spec.input_field!r} (spec.dataset.inputField)"
    if err is None and spec.expected_field and spec.expected_field not in row:
        err = f"row {i} has no field {spec.expected_field!r} (spec.dataset.expectedField)"
    return Case(
        case_id=cid,
        input=row.get(spec.input_field),
        expected=row.get(spec.expected_field) if spec.expected_field else None,
        row=row,
        error=err,
    )


def _sample(cases: list[Case], spec: DatasetSpec) -> list[Case]:
    """``spec.limit`` cases drawn with ``random.Random(spec.seed)``, in file order (all when no limit)."""
    if spec.limit is not None and spec.limit < len(cases):
        rng = random.Random(spec.seed)
        keep = sorted(rng.sample(range(len(cases)), spec.limit))
        cases = [cases[i] for i in keep]
    return cases


@dataclass(frozen=True)
class Splits:
    """Train/validation/holdout cases and the hash that identifies the exact data and split."""

    train: list[Case]
    validation: list[Case]
    holdout: list[Case]
    dataset_hash: str


def dataset_hash(cases: Sequence[Case], extra: Any = None) -> str:
    """sha256 hex of the canonical JSON of ``[(id, input, expected), ...]`` plus ``extra``."""
    h = hashlib.sha256()
    for c in cases:
        h.update(canonical_json([c.case_id, _clean(c.input), _clean(c.expected)]).encode("utf-8"))
        h.update(b"\n")
    h.update(canonical_json(extra).encode("utf-8"))
    return h.hexdigest()


def split_cases(cases: Sequence[Case], split: SplitSpec, seed: int) -> Splits:
    """Deterministic, seeded split; stratified by ``expected`` when ``split.stratify``.

    Each stratum is shuffled with ``random.Random(seed)`` and cut by cumulative rounding, so every
    label with at least 3 cases appears in all three splits. Error cases go to train, where they
    are recorded as error rows without affecting candidate selection.

    Raises:
        ManifestError: if validation or holdout would be empty.
    """
    rng = random.Random(seed)
    usable = [c for c in cases if c.error is None]
    strata: dict[str, list[Case]] = defaultdict(list)
    for c in usable:
        strata[canonical_json(_clean(c.expected)) if split.stratify else ""].append(c)
    train: list[Case] = []
    val: list[Case] = []
    hold: list[Case] = []
    for key in sorted(strata):
        group = strata[key]
        rng.shuffle(group)
        n = len(group)
        n_hold = round(n * split.holdout)
        n_val = round(n * split.validation)
        if n >= 3:
            n_hold, n_val = max(1, n_hold), max(1, n_val)
        hold += group[:n_hold]
        val += group[n_hold : n_hold + n_val]
        train += group[n_hold + n_val :]
    train += [c for c in cases if c.error is not None]
    for name, part in (("validation", val), ("holdout", hold)):
        if not part:
            raise ManifestError(f"spec.dataset.split.{name}", f"the {name} split is empty; use more data")
    order = {c.case_id: i for i, c in enumerate(cases)}
    for part in (train, val, hold):
        part.sort(key=lambda c: order[c.case_id])
    h = dataset_hash(cases, {"split": split.model_dump(), "seed": seed})
    return Splits(train, val, hold, h)
