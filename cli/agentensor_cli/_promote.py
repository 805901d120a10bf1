"""``agentensor promote``: the GitOps promotion edit, written so that a reviewer reads what goes live.

``promote NAME --version N -f FILE`` looks version N up in the database and writes, in the
PromptConfig ``NAME`` of ``FILE``::

    spec:
      workflow: router
      activeVersion: 4
      active:               # the text of version 4, checked by the operator
        checksum: 3f2a...   # config_checksum(prompts, parameters)
        prompts:
          intent.card_arrival: |-
            ...
        parameters: {...}

so the commit's diff shows every prompt and parameter that changes. Only those two keys' bytes
change: the rest of the file (comments, quoting, list style, line endings, other documents) is
kept byte for byte (:mod:`._promote_edit`), strings are written so that YAML 1.1 and 1.2 readers
read them back the same (:mod:`._promote_yaml`), and the file is replaced by a locked
compare-and-swap, so two promotes of one file both land (:mod:`._promote_file`).

A version the database does not have is refused (exit 2), and so is a number no store can hold
(over 2,147,483,647). When the database cannot be reached,
the command says it could not check, writes ``spec.activeVersion`` alone and removes a stale
``spec.active`` (the operator then checks the version and serves its stored text).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.text import Text

from ._common import DbOption, err
from ._promote_edit import EditError, Target, check, check_snapshot_readers, edit, find_target, parse
from ._promote_file import ManifestFileError, read_manifest, replace_if_unchanged, resolve

if TYPE_CHECKING:
    from agentensor_api import ActiveSnapshot
    from agentensor_store import Store, VersionRecord

EXIT_INVALID = 2

MAX_VERSION = 2**31 - 1
"""Largest version number a store holds: ``prompt_versions.version`` is a 32-bit INTEGER on
PostgreSQL (a larger number made the lookup fail as "cannot check" and was written)."""

MAX_ATTEMPTS = 16
"""Plans of the edit before giving up while other writers keep changing the file (each
concurrent promote of the same file costs the others one more plan)."""


class CannotCheckError(Exception):
    """The database holding the versions could not be read; the message says why."""


def _fail(message: str) -> NoReturn:
    """``error: message`` on stderr, data printed as is (no Rich markup or emoji codes), exit 2."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    raise typer.Exit(EXIT_INVALID)


def _say(message: str) -> None:
    err.print(Text(message), highlight=False)


def promote(
    name: Annotated[str, typer.Argument(help="metadata.name of the PromptConfig.")],
    version: Annotated[int, typer.Option("--version", min=1, help="Version number to make active.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Manifest file in a Git checkout.")],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="metadata.namespace of the PromptConfig, when FILE has the name in several namespaces "
            "(a document without metadata.namespace matches any).",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Point PromptConfig NAME in FILE at stored version N, writing its prompts and checksum.

    Sets spec.activeVersion and spec.active (the version's prompts, parameters and checksum), so
    the Git diff shows the text that goes live; every other byte of FILE is kept. Fails (exit 2)
    when the database has no such version, or FILE has no such PromptConfig or has it in several
    namespaces (choose with -n). Commit the change and let Argo CD or Flux apply it; rollback is
    the same command with an earlier version.
    """
    if version > MAX_VERSION:
        _fail(f"--version: {version} is larger than any stored version can be (at most {MAX_VERSION})")
    path = resolve(file)
    snapshots: dict[tuple[str | None, str], ActiveSnapshot | None] = {}
    for _ in range(MAX_ATTEMPTS):
        try:
            written = _plan_and_replace(path, name, namespace, version, db, snapshots)
        except (EditError, ManifestFileError) as e:
            _fail(str(e))
        if written is not None:
            _report(file, name, version, *written)
            return
    _fail(f"{file}: the file kept changing while promoting ({MAX_ATTEMPTS} attempts); try again")


def _plan_and_replace(
    path: Path,
    name: str,
    namespace: str | None,
    version: int,
    db: str | None,
    snapshots: dict[tuple[str | None, str], ActiveSnapshot | None],
) -> tuple[ActiveSnapshot | None, Target] | None:
    """One plan of the edit: read the file, find the PromptConfig, edit and check it, and replace
    the file unless another writer changed it meanwhile.

    The version is looked up once per ``(namespace, workflow)`` and kept in ``snapshots`` for the
    next plan. Returns ``(snapshot, target)`` when the file was replaced, ``None`` when it changed
    under the plan (plan again).

    Raises:
        EditError: the file cannot be edited as asked (the message names the file and the reason).
        ManifestFileError: the file cannot be read or replaced.
    """
    raw = read_manifest(path)
    text, docs = parse(path, raw)
    target = find_target(path, docs, name, namespace)
    key = (target.namespace or namespace, target.workflow)
    if key not in snapshots:
        snapshots[key] = _snapshot_or_warn(db, key[0], target.workflow, version)
    snapshot = snapshots[key]
    if snapshot is not None:
        check_snapshot_readers(path, snapshot)
    new_text = edit(path, text, target, version, snapshot)
    check(path, docs, new_text, target, version, snapshot)
    if not replace_if_unchanged(path, raw, new_text.encode("utf-8")):
        return None
    return snapshot, target


def _report(file: Path, name: str, version: int, snapshot: ActiveSnapshot | None, target: Target) -> None:
    was = "inline spec" if target.previous is None else f"version {target.previous}"
    text = f", {len(snapshot.prompts)} prompt(s), checksum {snapshot.checksum[:12]}" if snapshot else ""
    _say(f"{file}: PromptConfig {name} activeVersion {version}{text} (was {was})")


def _snapshot_or_warn(db: str | None, namespace: str | None, workflow: str, version: int) -> ActiveSnapshot | None:
    """The stored snapshot, or None (with a warning) when the database cannot be read; exits 2
    when it has no such version."""
    try:
        return stored_snapshot(db, namespace, workflow, version)
    except CannotCheckError as e:
        _say(
            f"warning: could not check that workflow {workflow!r} has version {version}: {e}. "
            "Writing spec.activeVersion only (no prompt text in the diff); the operator checks the version."
        )
        return None
    except LookupError as e:
        _fail(str(e))


def stored_version(
    store: Store, namespace: str | None, workflow: str, version: int
) -> tuple[VersionRecord | None, int | None]:
    """The one store lookup of ``promote``: version ``version`` of ``workflow`` and the latest version number.

    ``namespace`` is the PromptConfig's (``metadata.namespace``, else ``-n``; None: neither, which
    is the ``default`` namespace, as for kubectl). Versions are numbered per namespace and workflow,
    so another namespace's versions are never found.
    """
    ns = namespace or "default"
    versions = store.list_versions(workflow, namespace=ns)
    latest = versions[-1].version if versions else None
    return store.get_version(workflow, version, namespace=ns), latest


def stored_snapshot(db: str | None, namespace: str | None, workflow: str, version: int) -> ActiveSnapshot:
    """Version ``version`` of ``workflow`` from the database at ``db`` (default URL when None).

    The database is only read: no migration runs, and a SQLite file that does not exist is not
    created (it is reported as unreachable).

    Raises:
        LookupError: the database is readable and has no such version (message lists the latest),
            or its query failed for another reason than an outage, or the stored text is not
            one a manifest can hold.
        CannotCheckError: the database cannot be reached or has no schema yet.
    """
    from pydantic import ValidationError

    from agentensor_api import ActiveSnapshot
    from agentensor_store import DatabaseUnavailableError, SchemaNotReadyError, StoreError

    store = _open_readonly(db)
    try:
        record, latest = stored_version(store, namespace, workflow, version)
    except (DatabaseUnavailableError, SchemaNotReadyError) as e:
        raise CannotCheckError(f"{type(e).__name__}: {e}") from e
    except StoreError as e:
        raise LookupError(f"--version: cannot look version {version} up: {e}; file left unchanged") from e
    finally:
        store.close()
    if record is None:
        have = f"its latest is {latest}" if latest is not None else "it has no stored version"
        raise LookupError(
            f"--version: workflow {workflow!r} has no stored version {version} in {store.url} ({have}; "
            f"see `agentensor checkpoints list {workflow}`)"
        )
    try:
        return ActiveSnapshot(checksum=record.checksum, prompts=record.prompts, parameters=record.parameters)
    except ValidationError as e:
        raise LookupError(f"--version: stored version {version} cannot be written to a manifest: {e}") from e


def _open_readonly(db: str | None) -> Store:
    """The store at ``db`` (default URL when None), not migrated; a missing SQLite file is not created.

    Raises:
        CannotCheckError: the URL cannot be parsed, names a missing SQLite file or an unsupported database.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from agentensor_store import Store, UnsupportedDatabaseError, default_database_url

    url = db or default_database_url()
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise CannotCheckError("cannot parse the database URL") from e
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        raise CannotCheckError(f"SQLite database {parsed.database} does not exist")
    try:
        return Store(url)
    except UnsupportedDatabaseError as e:
        raise CannotCheckError(str(e)) from e
