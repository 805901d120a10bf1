"""Hostile strings and numbers through every ``agentensor`` command, as real subprocesses.

Names, paths, run ids, workflow keys and case text reach the console, and a ``[/x]`` in them
once raised Rich's ``MarkupError`` (a traceback, exit 1); huge integers raised ``OverflowError``
and bad ``--db`` URLs driver errors. Every command must now end with its documented exit code
(0 done, 1 no such run/version/checkpoint, 2 invalid input) and a message, never a traceback,
and a value it echoes is shown as written.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from agentensor_api import PromptConfig, load_manifests, parse_resource
from tests.runner._synthetic import make_rows, manifests

REPO = Path(__file__).resolve().parents[2]
MARKUP = "[/x][bold][link=file:///etc/passwd]:smile:"
RUN_ID = "[/x]run"
WORKFLOW = "wf_hostile"
NOT_UTF8 = b"\xff\xfe[/x]"
HUGE = "99999999999999999999999"
ESCAPES = "\x1b]0;pwned\x07\u202e"  # retitles the terminal window, then reverses the line

Arg = str | bytes


def agentensor(*args: Arg, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"agentensor_cli",
            *(a if isinstance(a, bytes) else os.fsencode(a) for a in args),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


@dataclass(frozen=True)
class Stored:
    """A database holding one finished TrainingRun whose paths, run id and case text are hostile."""

    root: Path
    db: str
    manifest: Path


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    root = tmp_path_factory.mktemp("hostile") / "a[" / "x]"  # the path holds "a[/x]"
    root.mkdir(parents=True)
    rows = make_rows(n_per_intent=4)
    for i, r in enumerate(rows[:6]):
        r["text"] = f"{r['text']} {MARKUP}"
        r["id"] = f"[/x]-{i}"
    pc, tr = manifests(rows, epochs=1, batch_size=24)
    pc["spec"]["workflow"] = WORKFLOW
    manifest = root / "run[bold].yaml"
    manifest.write_text(yaml.safe_dump_all([pc, tr], sort_keys=False))
    db = f"sqlite:///{root / 'agentensor[b].db'}"
    res = agentensor("run", "-f", str(manifest), "--db", db, "--out", str(root / "out[/o]"), "--run-id", RUN_ID)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and str(root / "out[/o]") in " ".join(res.stderr.split())
    return Stored(root, db, manifest)


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[Stored], list[Arg]]
    code: int
    needle: str = ""  # in stdout + stderr (whitespace collapsed)


def _c(id: str, args: Callable[[Stored], list[Arg]], code: int, needle: str = "") -> object:
    return pytest.param(Case(id, args, code, needle), id=id)


CASES = [
    # markup in data is printed as written
    _c("report-run-id", lambda s: ["report", RUN_ID, "--db", s.db, "-o", str(s.root / "r[/x]")], 0, RUN_ID),
    _c("report-diff", lambda s: ["report", RUN_ID, "--db", s.db, "--diff", "1", "1"], 0, "are identical"),
    _c("report-unknown", lambda s: ["report", "[/x]", "--db", s.db], 1, "RUN '[/x]'"),
    _c("report-ns-name", lambda s: ["report", "n[/x]/[bold]", "--db", s.db], 1, "n[/x]/[bold]"),
    _c(
        "report-escape-seq",
        lambda s: ["report", "\x1b]0;pwned\x07\u202e", "--db", s.db],
        1,
        "\\x1b]0;pwned\\x07\\u202e",
    ),
    _c("report-not-utf8", lambda s: ["report", NOT_UTF8, "--db", s.db], 2, "not valid UTF-8"),
    _c("report-long", lambda s: ["report", "r" * 5000, "--db", s.db], 2, "5000 characters"),
    _c("report-out-device", lambda s: ["report", RUN_ID, "--db", s.db, "-o", "/dev/null"], 2, "not a directory"),
    _c("ckpt-list", lambda s: ["checkpoints", "list", WORKFLOW, "--db", s.db], 0, RUN_ID[:12]),
    _c("ckpt-list-markup", lambda s: ["checkpoints", "list", "[/x]", "--db", s.db], 1, "workflow '[/x]'"),
    _c("ckpt-list-long", lambda s: ["checkpoints", "list", "w" * 5000, "--db", s.db], 2, "5000 characters"),
    _c("ckpt-list-not-utf8", lambda s: ["checkpoints", "list", NOT_UTF8, "--db", s.db], 2, "not valid UTF-8"),
    _c("export-dir", lambda s: ["checkpoints", "export", WORKFLOW, "--best", "-o", str(s.root), "--db", s.db], 2),
    _c("export-name-markup", lambda s: [*_export(s), "--name", "[/x]"], 2, "--name: String should match pattern"),
    _c("export-ns-markup", lambda s: [*_export(s), "--namespace", "[/x]"], 2, "--namespace: String should match"),
    _c("export-ns-long", lambda s: [*_export(s), "--namespace", "n" * 64], 2, "--namespace: String should have at"),
    _c("export-dev-full", lambda s: ["checkpoints", "export", WORKFLOW, "--best", "-o", "/dev/full", "--db", s.db], 2),
    _c("export-fifo-unread", lambda s: [*_export(s)[:-2], "-o", _fifo(s.root)], 2, "no process reads the FIFO"),
    _c("run-missing-markup", lambda s: ["run", "-f", str(s.root / "[/x].yaml"), "--db", s.db], 2, "[/x].yaml"),
    _c("run-id-long", lambda s: ["run", "-f", str(s.manifest), "--db", s.db, "--run-id", "r" * 65], 2, "--run-id"),
    _c("run-id-not-utf8", lambda s: ["run", "-f", str(s.manifest), "--db", s.db, "--run-id", NOT_UTF8], 2, "UTF-8"),
    _c("run-id-empty", lambda s: ["run", "-f", str(s.manifest), "--db", s.db, "--run-id", ""], 2, "--run-id"),
    _c("run-manifest-device", lambda s: ["run", "-f", "/dev/null", "--db", s.db], 2, "/dev/null is a device"),
    _c("run-out-is-file", lambda s: ["run", "-f", str(s.manifest), "--db", s.db, "--out", str(s.manifest)], 2),
    _c("runner-manifest", lambda s: ["runner", "--manifest", str(s.root / "[/x]"), "--db", s.db], 2, "[/x]"),
    _c("runner-shard-huge", lambda s: ["runner", "--manifest", str(s.manifest), "--shard", f"1/{HUGE * 200}"], 2),
    _c("runner-shard-markup", lambda s: ["runner", "--manifest", str(s.manifest), "--shard", "[/x]"], 2, "[/x]"),
    _c("runner-run-id-long", lambda s: ["runner", "--manifest", str(s.manifest), "--run-id", "r" * 65], 2),
    _c("operator-port-huge", lambda s: ["operator", "--metrics-port", HUGE], 2, "--metrics-port"),
    _c("operator-bind-markup", lambda s: ["operator", "--metrics-bind-address", "[/x]"], 2, "'[/x]'"),
    _c("crds-out-device", lambda s: ["crds", "-o", "/dev/null"], 2, "not a directory"),
    _c("docs-out-dir", lambda s: ["docs", "-o", str(s.root)], 2, "is a directory"),
    _c("docs-out-dev-full", lambda s: ["docs", "-o", "/dev/full"], 2, "No space left"),
]


def _export(s: Stored) -> list[Arg]:
    return ["checkpoints", "export", WORKFLOW, "--best", "--db", s.db, "-o", str(s.root / "e[/x].yaml")]


def _fifo(root: Path) -> str:
    path = root / "fifo[x]"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("case", CASES)
def test_hostile_values_end_with_a_message_not_a_traceback(case: Case, stored: Stored) -> None:
    res = agentensor(*case.args(stored), cwd=stored.root)
    both = res.stdout + res.stderr
    assert "Traceback" not in both, both[-3000:]
    assert res.returncode == case.code, (res.returncode, both[-3000:])
    assert case.needle in " ".join(both.split()), both[-3000:]


NUMBERS = [
    pytest.param(["checkpoints", "export", WORKFLOW, "--version", HUGE], "--version", id="export-version-huge"),
    pytest.param(["checkpoints", "export", WORKFLOW, "--version", "0"], "--version", id="export-version-zero"),
    pytest.param(["checkpoints", "export", WORKFLOW, "--version", "-5"], "--version", id="export-version-negative"),
    pytest.param(
        ["checkpoints", "export", WORKFLOW, "--version", "2147483648"], "--version", id="export-version-int32"
    ),
    pytest.param(["report", RUN_ID, "--diff", "1", HUGE], "--diff", id="report-diff-huge"),
    pytest.param(["report", RUN_ID, "--diff", "-1", "1"], "--diff", id="report-diff-negative"),
]


@pytest.mark.parametrize(("args", "option"), NUMBERS)
def test_out_of_range_numbers_name_the_option(args: list[str], option: str, stored: Stored) -> None:
    extra = ["-o", str(stored.root / "x.yaml")] if args[0] == "checkpoints" else []
    res = agentensor(*args, *extra, "--db", stored.db)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "OverflowError" not in res.stderr
    assert option in res.stderr and ("range" in res.stderr or "less than" in res.stderr or "greater" in res.stderr)


READ_ONLY = [
    pytest.param(["checkpoints", "list", WORKFLOW], id="checkpoints-list"),
    pytest.param(["checkpoints", "export", WORKFLOW, "--best", "-o", "x.yaml"], id="checkpoints-export"),
    pytest.param(["report", RUN_ID], id="report"),
    pytest.param(["report", RUN_ID, "--diff", "1", "2"], id="report-diff"),
]


@pytest.mark.parametrize("args", READ_ONLY)
def test_read_only_commands_create_no_database(args: list[str], tmp_path: Path) -> None:
    for db in (tmp_path / "typo.db", tmp_path / "agentensor.db"):
        given = ["--db", f"sqlite:///{db}"] if db.name == "typo.db" else []  # the default ./agentensor.db
        res = agentensor(*args, *given, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert f"{db.name} does not exist" in res.stderr and "creates nothing" in res.stderr, res.stderr
        assert not db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_read_only_commands_refuse_a_database_without_the_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    res = agentensor("report", "x", "--db", f"sqlite:///{empty}", cwd=tmp_path)
    assert res.returncode == 2 and "holds no agentensor tables" in res.stderr, res.stderr
    with sqlite3.connect(empty) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [], "no table was created"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("nonsense", "cannot parse the database URL", id="nonsense"),
        pytest.param("postgresql+psycopg://nohost.invalid/x", "nohost.invalid", id="unknown-host"),
        pytest.param(
            "sqlite:////nonexistent/dir/x.db", "/nonexistent/dir of the SQLite database does not exist", id="no-dir"
        ),
        pytest.param("mysql://u:secret@h/x", "unsupported database backend", id="other-backend"),
        pytest.param("sqlite:////", "is not a file", id="root-dir"),
    ],
)
def test_db_upgrade_with_a_bad_url_exits_2(url: str, needle: str) -> None:
    res = agentensor("db", "upgrade", "--db", url)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and needle in " ".join(res.stderr.split()) and "secret" not in res.stderr


def test_exported_manifest_reads_back_through_our_loader(stored: Stored) -> None:
    out = stored.root / "export" / "pc.yaml"
    res = agentensor("checkpoints", "export", WORKFLOW, "--best", "-o", str(out), "--db", stored.db)
    assert res.returncode == 0, res.stderr
    (pc,) = load_manifests([out])
    assert isinstance(pc, PromptConfig)
    assert pc.name == "wf-hostile" and pc.spec.workflow == WORKFLOW  # '_' is not allowed in a name
    assert isinstance(parse_resource(yaml.safe_load(out.read_text())), PromptConfig)


def test_every_command_has_help() -> None:
    for command in (
        [],
        ["run"],
        ["report"],
        ["checkpoints", "list"],
        ["checkpoints", "export"],
        ["db", "upgrade"],
        ["crds"],
        ["docs"],
        ["runner"],
        ["operator"],
        ["promote"],
    ):
        res = agentensor(*command, "--help")
        assert res.returncode == 0 and "Traceback" not in res.stderr, (command, res.stderr)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("[/x][bold]:smile:", "[/x][bold]:smile:", id="markup-kept-verbatim"),
        pytest.param("a\x1b[2Jb", "a\\x1b[2Jb", id="escape-sequence"),
        pytest.param("a\rb", "a\\rb", id="carriage-return"),
        pytest.param("a\u202eb", "a\\u202eb", id="bidi-override"),
        pytest.param("a\x9bb", "a\\x9bb", id="c1-csi"),
        pytest.param("line\n\tnext", "line\n\tnext", id="newline-and-tab-kept"),
        pytest.param("é日本", "é日本", id="printable-unicode-kept"),
    ],
)
def test_the_consoles_print_data_as_written(text: str, shown: str) -> None:
    from rich.table import Table

    from agentensor_cli._common import DataConsole

    console = DataConsole(record=True, width=200, markup=False)
    console.print(text, markup=True)  # asking for markup does not turn it on
    table = Table(title=text)
    table.add_column(text)
    table.add_row(text)
    console.print(table)
    printed = console.export_text()
    assert printed.count(shown.split("\n")[0]) == 4, printed


def test_no_cli_module_builds_its_own_console() -> None:
    """Every console of the CLI is a DataConsole from _common, so new code cannot print data as markup."""
    sources = sorted((REPO / "cli" / "agentensor_cli").glob("*.py"))
    offenders = [
        p.name
        for p in sources
        if p.name != "_common.py" and ("Console(" in p.read_text() or "markup=True" in p.read_text())
    ]
    assert offenders == []
