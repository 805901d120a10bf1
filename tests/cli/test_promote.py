"""``agentensor promote``: the GitOps edit writes the version's text and checksum, keeps the rest,
and refuses a version the database does not have (SQLite and PostgreSQL, real stores)."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from agentensor_api import ActiveSnapshot, PromptConfig, config_checksum, load_manifests
from agentensor_cli._app import app
from agentensor_cli._promote_edit import check, check_snapshot_readers, edit, find_target, parse
from agentensor_operator._decisions._promptconfig import active_snapshot_error
from agentensor_store import Store
from tests._wait import processes_alive, wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "banking77" / "promptconfig.yaml"

MULTI = """\
---
# the router's prompts
apiVersion: agentensor.dev/v1alpha1
kind: PromptConfig
metadata:
  name: router   # live config
spec:
  workflow: router
  activeVersion: 2   # promoted 2026-01-01
  prompts:
    intent.a: {text: "alpha"}
  parameters:
    tags:
      - x
      - y
---
apiVersion: agentensor.dev/v1alpha1
kind: TrainingRun
metadata: {name: other}
spec: {}
"""

TRAINED = {
    "intent.a": "alpha: questions about the letter a.\nExamples:\n- what is a?\n- 'a' or \"b\"",
    "intent.b": "beta",
}


def promote(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["promote", *args])
    return result.exit_code, result.output


def _spec(path: Path, name: str) -> dict[str, Any]:
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if d and d.get("metadata", {}).get("name") == name)
    spec: dict[str, Any] = doc["spec"]
    return spec


@pytest.mark.one_backend
def test_promotion_writes_the_text_and_checksum_and_keeps_every_other_line(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "promptconfig.yaml"
    shutil.copy(EXAMPLE, path)
    before = path.read_text().splitlines()
    with Store(store_url) as store:
        pc = load_manifests([path])[0]
        assert isinstance(pc, PromptConfig)
        store.register_inline_version(pc)
        texts = {k: p.text for k, p in pc.spec.prompts.items()} | {"intent.card_arrival": "card arrival\nmy card"}
        trained = store.register_version("banking77-router", texts, {"threshold": 0.5}, source="checkpoint")
    assert trained.version == 2

    code, output = promote("banking77-router", "--version", "2", "--file", str(path), "--db", store_url)
    assert code == 0, output
    assert "activeVersion 2, 77 prompt(s), checksum " + trained.checksum[:12] in output
    after = path.read_text().splitlines()
    start = after.index("  activeVersion: 2")
    assert after[start - 1] == "  workflow: banking77-router"
    block_end = after.index("  prompts:")
    assert after[:start] + after[block_end:] == before, "every line outside the new block is unchanged"
    block = after[start + 1 : block_end]
    assert block[0] == "  active:" and block[1] == f"    checksum: {trained.checksum}"
    # the reviewer reads the text: a multi-line prompt is a literal block, line by line
    assert "      intent.card_arrival: |-" in block and "        my card" in block

    spec = _spec(path, "banking77-router")
    assert spec["active"] == {"checksum": trained.checksum, "prompts": texts, "parameters": {"threshold": 0.5}}
    assert config_checksum(spec["active"]["prompts"], spec["active"]["parameters"]) == trained.checksum
    promoted = load_manifests([path])[0]
    assert isinstance(promoted, PromptConfig) and promoted.spec.active is not None
    assert active_snapshot_error(promoted.spec.active, version=2, stored_checksum=trained.checksum) is None


@pytest.mark.one_backend
def test_rollback_replaces_the_block_in_place_in_a_multi_document_file(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    with Store(store_url) as store:
        first = store.register_version("router", {"intent.a": "alpha"}, {}, source="inline")
        second = store.register_version("router", TRAINED, {"k": [1, 2]}, source="checkpoint")
    code, output = promote("router", "--version", str(second.version), "--file", str(path), "--db", store_url)
    assert code == 0 and "was version 2" in output, output
    assert _spec(path, "router")["active"]["prompts"] == TRAINED
    code, output = promote("router", "--version", str(first.version), "--file", str(path), "--db", store_url)
    assert code == 0, output
    text = path.read_text()
    expected_block = f"""\
  activeVersion: 1   # promoted 2026-01-01
  active:
    checksum: {first.checksum}
    prompts:
      intent.a: alpha
    parameters: {{}}
"""
    assert text == MULTI.replace("  activeVersion: 2   # promoted 2026-01-01\n", expected_block)


@pytest.mark.one_backend
def test_a_version_the_database_lacks_fails_and_leaves_the_file(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    with Store(store_url) as store:
        store.register_version("router", {"intent.a": "alpha"}, {}, source="inline")
    code, output = promote("router", "--version", "99", "--file", str(path), "--db", store_url)
    assert code == 2, output
    assert "--version: workflow 'router' has no stored version 99" in output and "its latest is 1" in output
    assert "agentensor checkpoints list router" in output
    assert path.read_text() == MULTI


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:///{tmp}/missing.db", id="sqlite-file-missing"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/test", id="postgres-refused"),
    ],
)
def test_an_unreachable_database_is_reported_and_only_the_pointer_is_written(url: str, tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    stale = MULTI.replace(
        "  prompts:\n", f"  active:\n    checksum: {'0' * 64}\n    prompts: {{intent.a: old}}\n  prompts:\n", 1
    )
    path.write_text(stale)
    code, output = promote("router", "--version", "3", "--file", str(path), "--db", url.format(tmp=tmp_path))
    assert code == 0, output
    assert "could not check that workflow 'router' has version 3" in output
    assert "spec.activeVersion only" in output
    assert path.read_text() == MULTI.replace("activeVersion: 2 ", "activeVersion: 3 "), "stale spec.active removed"
    assert not (tmp_path / "missing.db").exists(), "no SQLite file is created by a check"


def test_unknown_name_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    code, output = promote("nope", "--version", "1", "--file", str(path))
    assert code == 2 and "no PromptConfig named 'nope'" in output
    assert path.read_text() == MULTI


# -- issue 20: the GitOps edit under hostile input ------------------------------------------------

YAML11_OR_12_RETYPED = ["yes", "on", "no", "off", "y", "n", "Y", "12:30", "0o17", "1_000", ".inf", "null", "~",
                        "2026-01-01", "1e3", "0x1F", "true", "=", "<<", "-.5", ""]  # fmt: skip


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``agentensor promote ...`` as a user runs it: a real process (hang guard: 120 s)."""
    argv = [sys.executable, "-m", "agentensor_cli", "promote", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, env=dict(os.environ))


def _read_both(text: str) -> tuple[list[Any], list[Any]]:
    """Every document as PyYAML (YAML 1.1) and ruamel.yaml's pure loader (YAML 1.2) read it."""
    return list(yaml.safe_load_all(text)), list(YAML(typ="safe", pure=True).load_all(text))


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.one_backend
def test_texts_and_names_that_yaml_11_or_12_would_retype_are_promoted_as_strings(
    store_url: str, tmp_path: Path
) -> None:
    texts = {f"p{i}": text for i, text in enumerate(YAML11_OR_12_RETYPED)} | {
        name: "as a key" for name in YAML11_OR_12_RETYPED if name
    }
    parameters = {"mode": "on", "when": "12:30", "n": 1.5, "list": ["yes", 0.5, None, True]}
    with Store(store_url) as store:
        stored = store.register_version("router", texts, parameters, source="checkpoint")
    path = tmp_path / "router.yaml"
    path.write_text(MULTI[: MULTI.index("---\napiVersion: agentensor.dev/v1alpha1\nkind: TrainingRun")])
    code, output = promote("router", "--version", "1", "--file", str(path), "--db", store_url)
    assert code == 0, output
    for docs in _read_both(path.read_text()):
        assert docs[0]["spec"]["active"] == {"checksum": stored.checksum, "prompts": texts, "parameters": parameters}
    promoted = load_manifests([path])[0]
    assert isinstance(promoted, PromptConfig) and promoted.spec.active is not None
    assert active_snapshot_error(promoted.spec.active, version=1, stored_checksum=stored.checksum) is None
    assert '      "yes": as a key' in path.read_text() and '      p0: "yes"' in path.read_text()


def _snapshot(prompts: dict[str, str], parameters: dict[str, Any] | None = None) -> ActiveSnapshot:
    parameters = parameters or {}
    return ActiveSnapshot(checksum=config_checksum(prompts, parameters), prompts=prompts, parameters=parameters)


def _edited(text: str, snapshot: ActiveSnapshot | None, version: int = 7, namespace: str | None = None) -> str:
    """The pure edit of ``promote`` (no store, no file), checked as the command checks it."""
    path = Path("m.yaml")
    text, docs = parse(path, text.encode())
    target = find_target(path, docs, "router", namespace)
    if snapshot is not None:
        check_snapshot_readers(path, snapshot)
    new = edit(path, text, target, version, snapshot)
    check(path, docs, new, target, version, snapshot)
    return new


_TEXT = st.one_of(
    st.text(max_size=40), st.sampled_from(YAML11_OR_12_RETYPED), st.text(alphabet=" \n:#-'\"\t|>yesno", max_size=20)
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    texts=st.dictionaries(
        _TEXT.filter(lambda s: "\x00" not in s), _TEXT.filter(lambda s: "\x00" not in s), min_size=1, max_size=4
    )
)
def test_any_stored_text_reads_back_the_same_in_yaml_11_and_12(texts: dict[str, str]) -> None:
    snapshot = _snapshot(texts, {"k": next(iter(texts.values()))})
    for manifest in (MULTI, MULTI.replace("\n", "\r\n"), FLOW):
        new = _edited(manifest, snapshot)
        for docs in _read_both(new):
            assert docs[0]["spec"]["active"] == snapshot.to_wire()
            assert docs[0]["spec"]["activeVersion"] == 7


FLOW = (
    "kind: PromptConfig\napiVersion: agentensor.dev/v1alpha1\nmetadata: {name: router}\n"
    "spec: {workflow: router, prompts: {}}\n"
)
YES = _snapshot({"intent.a": "yes"})
C = YES.checksum
BLOCK2 = (
    f'  activeVersion: 7\n  active:\n    checksum: {C}\n    prompts:\n      intent.a: "yes"\n    parameters: {{}}\n'
)

KUBECTL = """\
apiVersion: agentensor.dev/v1alpha1
kind: PromptConfig
metadata:
  name: router   
  labels: {a: b}   # trailing
spec:
  workflow: 'router'   # the key
  tags:
  - x
  -   y
  prompts:
    intent.a:
      text: "alpha"    
"""  # noqa: W291 - trailing whitespace is the point

MULTI4 = """\
# leading comment
--- !!map
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data:
  k: |
    keep   
...
---
apiVersion: agentensor.dev/v1alpha1
kind: PromptConfig
metadata:
    name: router
spec:
    activeVersion: 3      # old
    workflow: router
    active:
        checksum: old
        prompts:
            intent.a: |+
              old text

        parameters: {x: 1}  # note
    # a comment after the block
    prompts:
        intent.a: {text: a}
---
kind: PromptConfig
apiVersion: agentensor.dev/v1alpha1
metadata: {name: other}
spec: {workflow: other}
"""  # noqa: W291
BLOCK4 = (
    f'    active:\n        checksum: {C}\n        prompts:\n            intent.a: "yes"\n        parameters: {{}}\n'
)


@pytest.mark.parametrize(
    ("before", "snapshot", "after"),
    [
        pytest.param(
            KUBECTL, YES, KUBECTL.replace("# the key\n", "# the key\n" + BLOCK2),
            id="kubectl-lists-comments-trailing-space",
        ),
        pytest.param(
            KUBECTL.replace("\n", "\r\n").rstrip("\r\n"), YES,
            (KUBECTL.replace("# the key\n", "# the key\n" + BLOCK2)).replace("\n", "\r\n").rstrip("\r\n"),
            id="crlf-no-final-newline",
        ),
        pytest.param(
            "\ufeffkind: PromptConfig\r\napiVersion: agentensor.dev/v1alpha1\r\nmetadata: {name: router}\r\n"
            "spec:\r\n  prompts: {}\r\n  workflow: router", YES,
            "\ufeffkind: PromptConfig\r\napiVersion: agentensor.dev/v1alpha1\r\nmetadata: {name: router}\r\n"
            "spec:\r\n  prompts: {}\r\n  workflow: router\r\n" + BLOCK2.replace("\n", "\r\n").rstrip("\r\n"),
            id="bom-crlf-workflow-on-the-last-line",
        ),
        pytest.param(
            MULTI4, YES,
            MULTI4.replace("3      # old", "7      # old").replace(
                MULTI4[MULTI4.index("    active:\n") : MULTI4.index("    # a comment")], BLOCK4
            ),
            id="other-documents-4-space-indent-block-replaced-in-place",
        ),
        pytest.param(
            MULTI4, None,
            MULTI4.replace("3      # old", "7      # old").replace(
                MULTI4[MULTI4.index("    active:\n") : MULTI4.index("    # a comment")], ""
            ),
            id="database-unreachable-stale-block-removed",
        ),
        pytest.param(
            FLOW, YES,
            FLOW.replace(
                "router, prompts",
                f'router, activeVersion: 7, active: {{checksum: {C}, prompts: {{intent.a: "yes"}}, parameters: {{}}}}, '
                "prompts",
            ),
            id="flow-style-spec",
        ),
        pytest.param(
            FLOW.replace("prompts: {}}", "prompts: {}, active: {checksum: x}}"), None,
            FLOW.replace("router, prompts", "router, activeVersion: 7, prompts"),
            id="flow-style-stale-block-removed",
        ),
        pytest.param(
            FLOW.replace("spec: {", "spec:\n  activeVersion:\n  ").replace(", prompts: {}}", "\n  prompts: {}"), None,
            FLOW.replace("spec: {", "spec:\n  activeVersion: 7\n  ").replace(", prompts: {}}", "\n  prompts: {}"),
            id="empty-activeversion",
        ),
    ],
)  # fmt: skip
def test_the_edit_changes_only_the_two_keys_byte_for_byte(
    before: str, snapshot: ActiveSnapshot | None, after: str
) -> None:
    assert _edited(before, snapshot) == after


def test_a_hostile_file_ends_in_one_line_error_and_an_unchanged_file(tmp_path: Path) -> None:
    cases = {
        "alias.yaml": MULTI.replace("metadata:\n", "x: &v 5\nmetadata:\n").replace(
            "activeVersion: 2", "activeVersion: *v"
        ),
        "twice.yaml": MULTI.replace("  prompts:\n", "  activeVersion: 4\n  prompts:\n"),
        "deep.yaml": MULTI + "---\n" + "[" * 100_000,
        "latin1.yaml": MULTI.replace("router's", "router\xe9s"),
        "bomb.yaml": MULTI + "---\n" + "".join(
            f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9 if i else ["x"]) + "]\n" for i in range(10)
        ),
    }  # fmt: skip
    for name, text in cases.items():
        path = tmp_path / name
        path.write_bytes(text.encode("latin-1" if name == "latin1.yaml" else "utf-8"))
        before = path.read_bytes()
        result = cli("router", "--version", "1", "-f", str(path), "--db", f"sqlite:///{tmp_path}/none.db")
        _one_line_error(result, name)
        assert path.read_bytes() == before, name


def _three_routers(namespaces: tuple[str | None, ...] = (None, None, None)) -> str:
    docs = []
    for i, namespace in enumerate(namespaces):
        ns = f"\n  namespace: {namespace}" if namespace else ""
        docs.append(
            f"apiVersion: agentensor.dev/v1alpha1\nkind: PromptConfig\nmetadata:\n  name: r{i}{ns}\n"
            f"spec:\n  workflow: w{i}\n  prompts:\n    intent.a: {{text: base}}\n"
        )
    return "---\n".join(docs)


def _pg_waiters(engine: Any) -> int:
    """Sessions of this database waiting on a lock (read from a connection of its own: inside a
    transaction, pg_stat_activity is a snapshot)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(query).scalar_one())


def _popen(*args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "agentensor_cli", "promote", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


@pytest.mark.postgres
def test_concurrent_promotes_of_one_file_all_land(pg_url: str, tmp_path: Path) -> None:
    """Three promotes read the file, then wait on the database (a table lock holds them), then all
    write: without the compare-and-swap, the last writer's file drops the other two edits."""
    with Store(pg_url) as store:
        store.upgrade()
        stored = [store.register_version(f"w{i}", {"intent.a": f"text {i}"}, {}, source="checkpoint") for i in range(3)]
    path = tmp_path / "all.yaml"
    path.write_text(_three_routers())
    engine = create_engine(pg_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            conn.exec_driver_sql("LOCK TABLE agentensor_prompt_versions IN ACCESS EXCLUSIVE MODE")
            procs = [_popen(f"r{i}", "--version", "1", "-f", str(path), "--db", pg_url) for i in range(3)]
            wait_for(
                lambda: _pg_waiters(engine) >= 3,
                120,
                "three promotes waiting on the database",
                interval=0.05,
                alive=processes_alive(*procs),
            )
            tx.commit()
    finally:
        engine.dispose()
    for proc in procs:
        _, errors = proc.communicate(timeout=120)
        assert proc.returncode == 0, errors
    docs = list(yaml.safe_load_all(path.read_text()))
    for i, doc in enumerate(docs):
        assert doc["spec"]["activeVersion"] == 1 and doc["spec"]["active"]["checksum"] == stored[i].checksum, i


def _flock_waiters(inode: int) -> list[str]:
    """Processes blocked in flock() on ``inode`` (the ``->`` lines of /proc/locks)."""
    lines = Path("/proc/locks").read_text().splitlines()
    return [line for line in lines if "->" in line and "FLOCK" in line and line.split()[6].endswith(f":{inode}")]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_promote_waits_for_the_lock_and_plans_again_on_the_text_written_meanwhile(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store(url) as store:
        store.upgrade()
        store.register_version("router", {"intent.a": "on"}, {}, source="checkpoint")
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another promote holds it between its check and its rename
        proc = _popen("router", "--version", "1", "-f", str(path), "--db", url)
        wait_for(
            lambda: _flock_waiters(os.fstat(fd).st_ino),
            120,
            "promote waiting on the file lock",
            interval=0.05,
            alive=processes_alive(proc),
        )
        tmp = tmp_path / "next.yaml"
        tmp.write_text("# written by the other promote\n" + MULTI)
        os.replace(tmp, path)
    finally:
        os.close(fd)  # releases the lock
    _, errors = proc.communicate(timeout=120)
    assert proc.returncode == 0, errors
    text = path.read_text()
    assert text.startswith("# written by the other promote\n"), "the other writer's edit is kept"
    assert _spec(path, "router")["active"]["prompts"] == {"intent.a": "on"}
    assert '      intent.a: "on"\n' in text


def test_non_regular_and_oversized_files_are_refused_without_reading_them(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(MULTI.encode() + b"#" * (8 * 1024 * 1024))
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    cases = [(fifo, "is a FIFO, expected a regular file"), (Path("/dev/zero"), "is a device"),
             (link, "/dev/zero is a device"), (tmp_path, "is a directory"),
             (big, "larger than the limit of 8388608 bytes"), (tmp_path / "missing.yaml", "No such file")]  # fmt: skip
    for path, message in cases:
        _one_line_error(cli("router", "--version", "1", "-f", str(path)), message)


@pytest.mark.parametrize("version", ["2147483648", "9223372036854775808", "9" * 40])
def test_a_version_beyond_the_store_range_is_refused_on_every_backend(
    version: str, store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    with Store(store_url) as store:
        store.register_version("router", {"intent.a": "alpha"}, {}, source="inline")
    code, output = promote("router", "--version", version, "--file", str(path), "--db", store_url)
    assert code == 2 and output.startswith("error: --version: ") and "at most 2147483647" in output, output
    assert path.read_text() == MULTI


def test_a_version_beyond_the_store_range_is_refused_as_a_user_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(MULTI)
    _one_line_error(cli("router", "--version", "9" * 30, "-f", str(path), "--db", "sqlite:///nowhere.db"), "--version")
    assert path.read_text() == MULTI


@pytest.mark.one_backend
def test_the_same_name_in_two_namespaces_needs_namespace(store_url: str, tmp_path: Path) -> None:
    with Store(store_url) as store:  # versions are per namespace: the two namespaces promoted into have one each
        stored = store.register_version("w1", {"intent.a": "b"}, {}, namespace="team-b", source="checkpoint")
        store.register_version("w1", {"intent.a": "b"}, {}, namespace="team-c", source="checkpoint")
    text = _three_routers(("team-a", None, "team-b")).replace("name: r0", "name: r1").replace("name: r2", "name: r1")
    text = text.replace("workflow: w0", "workflow: w1").replace("workflow: w2", "workflow: w1")
    path = tmp_path / "all.yaml"
    path.write_text(text)
    code, output = promote("r1", "--version", "1", "-f", str(path), "--db", store_url)
    assert code == 2 and "PromptConfig 'r1' is in 3 documents" in output and "choose one with -n/--namespace" in output
    assert "namespace 'team-a'" in output and "no metadata.namespace" in output and "namespace 'team-b'" in output
    assert path.read_text() == text

    code, output = promote("r1", "--version", "1", "-f", str(path), "-n", "team-b", "--db", store_url)
    assert code == 0, output
    docs = list(yaml.safe_load_all(path.read_text()))
    assert [d["spec"].get("activeVersion") for d in docs] == [None, None, 1]
    assert docs[2]["spec"]["active"]["checksum"] == stored.checksum

    code, output = promote("r1", "--version", "1", "-f", str(path), "--namespace", "team-c", "--db", store_url)
    assert code == 0, output
    assert [d["spec"].get("activeVersion") for d in yaml.safe_load_all(path.read_text())] == [None, 1, 1]

    # team-a has no version of w1: another namespace's version 1 is not promoted into it
    code, output = promote("r1", "--version", "1", "-f", str(path), "-n", "team-a", "--db", store_url)
    assert code == 2 and "has no stored version 1" in output, output
    assert [d["spec"].get("activeVersion") for d in yaml.safe_load_all(path.read_text())] == [None, 1, 1]


def test_a_namespace_the_file_lacks_is_refused_naming_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(_three_routers(("team-a", None, None)))
    code, output = promote("r0", "--version", "1", "-f", str(path), "-n", "team-b")
    assert code == 2 and "no PromptConfig named 'r0' in namespace 'team-b'" in output
    assert "it has one in namespace 'team-a'" in output


def test_markup_and_emoji_codes_in_names_and_paths_are_printed_as_data(tmp_path: Path) -> None:
    folder = tmp_path / "["
    folder.mkdir()
    path = folder / "x] [bold]:thumbs_up:.yaml"  # the path holds "[/x] [bold]"
    path.write_text(MULTI.replace("name: router   # live config", "name: 'r[/x]:thumbs_up:'"))
    result = cli("r[/x]:thumbs_up:", "--version", "3", "-f", str(path), "--db", f"sqlite:///{tmp_path}/none.db")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f"{path}: PromptConfig r[/x]:thumbs_up: activeVersion 3" in result.stderr
    _one_line_error(cli("[/x]", "--version", "3", "-f", str(path)), "no PromptConfig named '[/x]'", "[/x] [bold]")


def test_the_edit_goes_through_a_symlink_and_keeps_the_mode(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text(MULTI)
    real.chmod(0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(real.name)
    code, output = promote("router", "--version", "3", "-f", str(link), "--db", f"sqlite:///{tmp_path}/none.db")
    assert code == 0, output
    assert link.is_symlink() and "activeVersion: 3 " in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary file is left"
