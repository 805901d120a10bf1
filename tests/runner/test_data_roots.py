"""What a manifest can make the runner read: files under the granted roots only (``DataRoots``).

Real files, real symlinks, the real ``/proc``; the runner Pod's roots through the real
``agentensor runner`` (its container paths mapped under a folder, as the test node agent does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agentensor_api import DatasetSpec, ManifestError
from agentensor_cli._app import app
from agentensor_runner import DATA_ROOTS_ENV, DataRoots, load_cases
from agentensor_store import Store
from tests.runner._synthetic import make_rows, manifests

CSV = "id,text,label\n1,hello,greet\n2,bye,leave\n"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``base/`` (the manifest's folder) with a dataset, ``granted/`` and ``outside/`` beside it."""
    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    for name in ("base", "granted", "outside"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cases.csv").write_text(CSV)
    return tmp_path


def _link(tree: Path, target: str) -> str:
    (tree / "base" / "link.csv").symlink_to(target if target.startswith("/") else tree / target)
    return "link.csv"


def _dir_link(tree: Path) -> str:
    (tree / "base" / "sub").symlink_to(tree / "outside")
    return "sub/cases.csv"


Case = Callable[[Path], str]


@pytest.mark.parametrize(
    ("path", "roots", "error"),
    [
        pytest.param(lambda t: "cases.csv", DataRoots(), None, id="relative-in-base"),
        pytest.param(lambda t: str(t / "base" / "cases.csv"), DataRoots(), None, id="absolute-in-base"),
        pytest.param(lambda t: "/proc/self/environ", DataRoots(), "under /proc", id="proc-self-environ"),
        pytest.param(lambda t: "/sys/kernel/hostname", DataRoots(), "under /sys", id="sys"),
        pytest.param(lambda t: "../outside/cases.csv", DataRoots(), "outside the folders", id="dotdot"),
        pytest.param(lambda t: "sub/../../outside/cases.csv", DataRoots(), "outside the folders", id="dotdot-deep"),
        pytest.param(lambda t: str(t / "outside" / "cases.csv"), DataRoots(), "outside the folders", id="absolute"),
        pytest.param(lambda t: _link(t, "outside/cases.csv"), DataRoots(), "outside the folders", id="symlink-file"),
        pytest.param(_dir_link, DataRoots(), "outside the folders", id="symlink-dir"),
        pytest.param(lambda t: _link(t, "/proc/self/environ"), DataRoots(), "under /proc", id="symlink-to-proc"),
        pytest.param(lambda t: _link(t, "base/cases.csv"), DataRoots(), None, id="symlink-within"),
        pytest.param(lambda t: "../granted/cases.csv", None, None, id="granted-root"),
        pytest.param(lambda t: "/proc/self/environ", DataRoots.of([Path("/proc")]), "under /proc", id="proc-granted"),
        pytest.param(lambda t: "secret/token", "deny-secret", "which a manifest may never read", id="secret-mount"),
    ],
)
def test_dataset_path_must_resolve_under_a_root(
    tree: Path, path: Case, roots: DataRoots | str | None, error: str | None
) -> None:
    if roots is None:
        roots = DataRoots.of([tree / "granted"])
    elif roots == "deny-secret":
        (tree / "base" / "secret").mkdir()
        (tree / "base" / "secret" / "token").write_text("id,text\n1,s3cr3t\n")
        roots = DataRoots.of(denied=[tree / "base" / "secret"])
    assert isinstance(roots, DataRoots)
    raw = path(tree)
    spec = DatasetSpec(path=raw, format="csv", input_field="text", expected_field=None)
    if error is None:
        assert [c.input for c in load_cases(spec, base_dir=tree / "base", roots=roots)] == ["hello", "bye"]
        return
    with pytest.raises(ManifestError) as info:
        load_cases(spec, base_dir=tree / "base", roots=roots)
    assert info.value.field == "spec.dataset.path" and error in info.value.reason


def test_the_environment_grants_roots(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DatasetSpec(path=str(tree / "granted" / "cases.csv"), format="csv", input_field="text", expected_field=None)
    with pytest.raises(ManifestError):
        load_cases(spec, base_dir=tree / "base")
    monkeypatch.setenv(DATA_ROOTS_ENV, os.pathsep.join([str(tree / "nowhere"), str(tree / "granted")]))
    assert len(load_cases(spec, base_dir=tree / "base")) == 2


# -- in a runner Pod: --base-dir, declared data volumes, never a Secret volume ---------------------

UID = "7a1c2d3e-bbbb-4ccc-8ddd-0123456789ab"


def pod_manifest(root: Path, dataset_path: str, runner: dict[str, Any]) -> None:
    pc, tr = manifests(make_rows(4, seed=2), epochs=1, batch_size=16)
    tr["metadata"] = {"name": "paths", "namespace": "team-a", "uid": UID}
    pc["metadata"] = {"name": "synthetic", "namespace": "team-a"}
    rows = tr["spec"]["dataset"].pop("inline")
    tr["spec"]["dataset"].update({"path": dataset_path, "format": "jsonl"})
    tr["spec"]["runner"] = runner
    for folder in ("app/data", "mnt/data", "mnt/secret"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = root / "etc/agentensor/run/manifest.yaml"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(yaml.safe_dump_all([tr, pc]))


VOLUMES = {
    "volumes": [
        {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
        {"name": "key", "secret": {"secretName": "k"}},
    ],
    "volumeMounts": [{"name": "data", "mountPath": "/mnt/data"}, {"name": "key", "mountPath": "/mnt/secret"}],
}


@pytest.mark.parametrize(
    ("dataset_path", "code", "fragment"),
    [
        pytest.param("data/cases.jsonl", 0, None, id="base-dir"),
        pytest.param("../mnt/data/cases.jsonl", 0, None, id="declared-pvc-mount"),
        pytest.param("../mnt/secret/cases.jsonl", 2, "/mnt/secret, which a manifest may never read", id="secret"),
        pytest.param("/proc/self/environ", 2, "under /proc", id="proc"),
        pytest.param("../etc/agentensor/run/manifest.yaml", 2, "outside the folders", id="operator-mount"),
    ],
)
def test_runner_pod_reads_only_its_roots(tmp_path: Path, dataset_path: str, code: int, fragment: str | None) -> None:
    """Paths relative to ``--base-dir /app`` (container paths are mapped under ``tmp_path`` here;
    in a Pod ``../mnt/data`` from ``/app`` is ``/mnt/data``)."""
    pod_manifest(tmp_path, dataset_path, VOLUMES)
    db = f"sqlite:///{tmp_path / 'a.db'}"
    args = ["runner", "--manifest", "/etc/agentensor/run/manifest.yaml", "--base-dir", "/app", "--db", db]
    result = CliRunner().invoke(app, args, env={"AGENTENSOR_ROOT": str(tmp_path), "AGENTENSOR_DATABASE_URL": ""})
    assert result.exit_code == code, result.output
    if fragment is not None:
        store = Store(db)
        try:
            run = store.get_run(UID)
            assert run is not None and run.phase == "Failed"
            assert run.status["message"].startswith("spec.dataset.path: ") and fragment in run.status["message"]
        finally:
            store.close()
