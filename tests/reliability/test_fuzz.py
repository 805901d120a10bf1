"""Hypothesis fuzzing of the manifest and dataset parsers: only named errors, nothing dropped."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentensor_api import DatasetSpec, ManifestError, parse_resource
from agentensor_runner import load_cases

from .catalogue import base

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
SPEC_KEYS = [
    "workflow",
    "promptConfigRef",
    "config",
    "dataset",
    "evaluators",
    "objective",
    "optimizer",
    "parallelism",
    "caseTimeoutSeconds",
    "holdoutGuard",
    "checkpoint",
    "suspend",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(SPEC_KEYS), value=json_values)
def test_manifest_parser_only_raises_named_errors(key: str, value: Any) -> None:
    _, tr = base()
    tr["spec"][key] = value
    try:
        parse_resource(tr)
    except ManifestError as e:
        assert e.field and e.reason
        assert e.field == "<document>" or e.field.split(".")[0] in ("spec", "metadata", "apiVersion", "kind")


@settings(max_examples=200, deadline=None)
@given(doc=json_values)
def test_arbitrary_documents(doc: Any) -> None:
    try:
        parse_resource(doc)
    except ManifestError as e:
        assert e.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.binary(max_size=30), st.binary(max_size=10)), min_size=1, max_size=20))
def test_csv_loader_keeps_every_row(tmp_path: Path, rows: list[tuple[bytes, bytes]]) -> None:
    lines = [b"text,label"]
    for text, label in rows:
        clean = text.replace(b"\r", b"").replace(b"\n", b" ").replace(b'"', b"").replace(b",", b";")
        lines.append(
            b'"' + clean + b'",' + label.replace(b"\n", b"").replace(b"\r", b"").replace(b",", b"").replace(b'"', b"")
        )
    (tmp_path / "d.csv").write_bytes(b"\n".join(lines) + b"\n")
    spec = DatasetSpec(path="d.csv", input_field="text", expected_field="label")
    try:
        cases = load_cases(spec, base_dir=tmp_path)
    except ManifestError as e:
        assert e.field.startswith("spec.dataset")
        return
    expected_rows = len(list(csv.reader(io.StringIO((b"\n".join(lines)).decode("utf-8", "surrogateescape")))))
    assert len(cases) == expected_rows - 1, "every data row becomes a case (or an error case)"
    for c in cases:
        assert c.error is None or "line" in c.error or "row" in c.error


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.one_of(st.binary(max_size=40), json_values.map(lambda v: json.dumps(v).encode())), min_size=1, max_size=15
    )
)
def test_jsonl_loader_keeps_every_line(tmp_path: Path, lines: list[bytes]) -> None:
    lines = [ln.replace(b"\n", b" ").replace(b"\r", b" ") for ln in lines]
    (tmp_path / "d.jsonl").write_bytes(b'{"input": "ok", "expected": 1}\n' + b"\n".join(lines) + b"\n")
    try:
        cases = load_cases(DatasetSpec(path="d.jsonl"), base_dir=tmp_path)
    except ManifestError as e:
        assert e.field.startswith("spec.dataset")
        return
    non_blank = 1 + sum(1 for ln in lines if ln.decode("utf-8", "surrogateescape").strip())
    assert len(cases) == non_blank


YAML_PIECES = st.sampled_from(
    [
        "a: ",
        "&x ",
        "*x",
        "[",
        "]",
        "{",
        "}",
        "- ",
        "\n",
        "  ",
        "apiVersion: agentensor.dev/v1alpha1\n",
        "kind: TrainingRun\n",
        "spec:\n",
        "---\n",
        '"\\u0000"',
        "9" * 30,
        ": ",
        ",",
        "!!str ",
        "!!python/object:os.system ",
        "\ufeff",
        "\x00",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(YAML_PIECES, max_size=40), raw=st.binary(max_size=60))
def test_manifest_files_only_raise_named_errors(tmp_path: Path, pieces: list[str], raw: bytes) -> None:
    """Arbitrary YAML-ish text or bytes: the loader answers with a named ManifestError or resources, never hangs."""
    from agentensor_api import load_manifests

    for i, body in enumerate(("".join(pieces).encode(), raw)):
        path = tmp_path / f"m{i}.yaml"
        path.write_bytes(body)
        try:
            load_manifests([path])
        except ManifestError as e:
            assert e.field and e.reason and e.source


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=8)), min_size=1, max_size=15), bom=st.booleans())
def test_csv_ids_survive_a_byte_order_mark(tmp_path: Path, rows: list[tuple[str, str]], bom: bool) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "text", "label"])
    for i, (text, label) in enumerate(rows):
        writer.writerow([f"id{i}", text, label])
    (tmp_path / "d.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8"))
    spec = DatasetSpec(path="d.csv", input_field="text", expected_field="label", id_field="id")
    try:
        cases = load_cases(spec, base_dir=tmp_path)
    except ManifestError as e:
        assert e.field.startswith("spec.dataset")
        return
    assert all(c.case_id.startswith("id") for c in cases), [c.case_id for c in cases]
    for c in cases:
        assert c.error is None or "NUL" in c.error or "line" in c.error
