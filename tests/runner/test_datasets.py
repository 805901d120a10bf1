"""Dataset loading, bad rows as error cases, seeded stratified splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agentensor_api import DatasetSpec, ManifestError, SplitSpec
from agentensor_runner import Case, load_cases, split_cases


def _csv(tmp_path: Path, text: bytes) -> DatasetSpec:
    (tmp_path / "d.csv").write_bytes(text)
    return DatasetSpec(path="d.csv", input_field="text", expected_field="label")


def test_csv_rows_and_bad_utf8_isolated(tmp_path: Path) -> None:
    spec = _csv(tmp_path, b"text,label\nhello,a\n\xff\xfe bad,b\n,c\nok,d\n")
    cases = load_cases(spec, base_dir=tmp_path)
    assert [c.case_id for c in cases] == ["0", "1", "2", "3"]
    assert cases[0].input == "hello" and cases[0].error is None
    assert cases[1].error == "line 3 is not valid UTF-8"
    assert cases[2].input == "" and cases[2].error is None
    assert cases[3].expected == "d"


def test_jsonl_bad_lines_isolated(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"input": "a", "expected": 1}\nnot json\n[1]\n{"expected": 2}\n')
    cases = load_cases(DatasetSpec(path="d.jsonl"), base_dir=tmp_path)
    assert [c.error for c in cases] == [
        None,
        "line 2 is not valid JSON: Expecting value",
        "line 3 is a JSON list, expected an object",
        "row 3 has no field 'input' (spec.dataset.inputField)",
    ]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        pytest.param(
            DatasetSpec(path="d.csv", input_field="utterance", expected_field="label"),
            "spec.dataset.inputField",
            "no row has a field 'utterance'; columns are ['label', 'text']",
            id="input",
        ),
        pytest.param(
            DatasetSpec(path="d.csv", input_field="text", expected_field="intent"),
            "spec.dataset.expectedField",
            "no row has a field 'intent'",
            id="expected",
        ),
        pytest.param(DatasetSpec(path="missing.csv"), "spec.dataset.path", "cannot read", id="missing-file"),
        pytest.param(
            DatasetSpec(path="d.csv", input_field="text", expected_field="label", id_field="label"),
            "spec.dataset.idField",
            "not unique",
            id="dup-ids",
        ),
    ],
)
def test_dataset_errors_name_the_field(tmp_path: Path, spec: DatasetSpec, field: str, message: str) -> None:
    (tmp_path / "d.csv").write_text("text,label\nx,a\ny,a\n")
    with pytest.raises(ManifestError) as exc:
        load_cases(spec, base_dir=tmp_path)
    assert exc.value.field == field
    assert message in exc.value.reason


def test_limit_is_seeded() -> None:
    rows = [{"input": str(i), "expected": i % 3} for i in range(100)]
    a = load_cases(DatasetSpec(inline=rows, limit=10, seed=1))
    b = load_cases(DatasetSpec(inline=rows, limit=10, seed=1))
    c = load_cases(DatasetSpec(inline=rows, limit=10, seed=2))
    assert [x.case_id for x in a] == [x.case_id for x in b] != [x.case_id for x in c]
    assert len(a) == 10


def test_split_is_deterministic_stratified_and_disjoint() -> None:
    rows = [{"input": f"u{i}", "expected": f"label{i % 7}"} for i in range(700)]
    cases = load_cases(DatasetSpec(inline=rows))
    split = SplitSpec(train=0.6, validation=0.2, holdout=0.2)
    s1, s2 = split_cases(cases, split, 7), split_cases(cases, split, 7)
    s3 = split_cases(cases, split, 8)

    def ids(part: list[Case]) -> list[str]:
        return [c.case_id for c in part]

    assert ids(s1.train) == ids(s2.train) and s1.dataset_hash == s2.dataset_hash
    assert ids(s1.holdout) != ids(s3.holdout) and s1.dataset_hash != s3.dataset_hash
    all_ids = ids(s1.train) + ids(s1.validation) + ids(s1.holdout)
    assert sorted(all_ids) == sorted(c.case_id for c in cases)
    assert (len(s1.train), len(s1.validation), len(s1.holdout)) == (420, 140, 140)
    assert set(Counter(c.expected for c in s1.holdout).values()) == {20}
