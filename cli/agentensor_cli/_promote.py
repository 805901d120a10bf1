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

so the commit's diff shows every prompt and parameter that changes. The rest of the file is kept
byte for byte where ruamel.yaml's round trip allows (comments, key order, quoting).

A version the database does not have is refused (exit 2). When the database cannot be reached,
the command says it could not check, writes ``spec.activeVersion`` alone and removes a stale
``spec.active`` (the operator then checks the version and serves its stored text).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import DbOption, err, fail

if TYPE_CHECKING:
    from agentensor_api import ActiveSnapshot

EXIT_INVALID = 2


class CannotCheckError(Exception):
    """The database holding the versions could not be read; the message says why."""


def promote(
    name: Annotated[str, typer.Argument(help="metadata.name of the PromptConfig.")],
    version: Annotated[int, typer.Option("--version", min=1, help="Version number to make active.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Manifest file in a Git checkout.")],
    db: DbOption = None,
) -> None:
    """Point PromptConfig NAME in FILE at stored version N, writing its prompts and checksum.

    Sets spec.activeVersion and spec.active (the version's prompts, parameters and checksum), so
    the Git diff shows the text that goes live. Fails (exit 2) when the database has no such
    version. Commit the change and let Argo CD or Flux apply it; rollback is the same command
    with an earlier version.
    """
    try:
        edit = PromotionEdit.read(file, name)
    except (OSError, ValueError) as e:
        fail(str(e))
    try:
        snapshot = stored_snapshot(db, edit.workflow, version)
    except CannotCheckError as e:
        err.print(
            f"warning: could not check that workflow {edit.workflow!r} has version {version}: {e}. "
            "Writing spec.activeVersion only (no prompt text in the diff); the operator checks the version.",
            highlight=False,
        )
        snapshot = None
    except LookupError as e:
        fail(str(e))
    try:
        previous = edit.apply(version, snapshot)
        edit.write()
    except (OSError, ValueError) as e:
        fail(str(e))
    was = "inline spec" if previous is None else f"version {previous}"
    text = f", {len(snapshot.prompts)} prompt(s), checksum {snapshot.checksum[:12]}" if snapshot else ""
    err.print(f"{file}: PromptConfig {name} activeVersion {version}{text} (was {was})", highlight=False)


def stored_snapshot(db: str | None, workflow: str, version: int) -> ActiveSnapshot:
    """Version ``version`` of ``workflow`` from the database at ``db`` (default URL when None).

    The database is only read: no migration runs, and a SQLite file that does not exist is not
    created (it is reported as unreachable).

    Raises:
        LookupError: the database is readable and has no such version (message lists the latest).
        CannotCheckError: the database cannot be reached or has no schema yet.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from agentensor_api import ActiveSnapshot
    from agentensor_store import Store, StoreError, UnsupportedDatabaseError, default_database_url

    url = db or default_database_url()
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise CannotCheckError("cannot parse the database URL") from e
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        raise CannotCheckError(f"SQLite database {parsed.database} does not exist")
    try:
        store = Store(url)
    except UnsupportedDatabaseError as e:
        raise CannotCheckError(str(e)) from e
    try:
        record = store.get_version(workflow, version)
        if record is None:
            versions = [v.version for v in store.list_versions(workflow)]
            have = f"its latest is {versions[-1]}" if versions else "it has no stored version"
            raise LookupError(
                f"--version: workflow {workflow!r} has no stored version {version} in {store.url} ({have}; "
                f"see `agentensor checkpoints list {workflow}`)"
            )
    except StoreError as e:
        raise CannotCheckError(f"{type(e).__name__}: {e}") from e
    finally:
        store.close()
    return ActiveSnapshot(checksum=record.checksum, prompts=record.prompts, parameters=record.parameters)


class PromotionEdit:
    """One PromptConfig document of a (multi-document) YAML file, edited by a ruamel.yaml round trip."""

    def __init__(self, path: Path, name: str, text: str, yaml: Any, docs: list[Any], target: Any) -> None:
        self.path, self.name, self.text, self.yaml, self.docs, self.target = path, name, text, yaml, docs, target
        self.snapshot: ActiveSnapshot | None = None

    @classmethod
    def read(cls, path: Path, name: str) -> PromotionEdit:
        """Parse ``path`` and find PromptConfig ``name``.

        Raises:
            ValueError: the YAML cannot be parsed, or has no such PromptConfig, or it has no
                ``spec`` mapping with a ``workflow``.
            OSError: the file cannot be read.
        """
        from ruamel.yaml import YAML
        from ruamel.yaml.comments import CommentedMap
        from ruamel.yaml.error import YAMLError

        text = path.read_text(encoding="utf-8")
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096  # never re-wrap long prompt texts
        yaml.indent(mapping=2, sequence=4, offset=2)
        yaml.explicit_start = text.lstrip().startswith("---")
        try:
            docs = list(yaml.load_all(text))
        except YAMLError as e:
            raise ValueError(f"{path}: cannot parse YAML: {e}") from e
        target = next((doc for doc in docs if _is_promptconfig(doc, name)), None)
        if target is None:
            raise ValueError(f"{path}: no PromptConfig named {name!r} (metadata.name)")
        spec = target.get("spec")
        if not isinstance(spec, CommentedMap) or not isinstance(spec.get("workflow"), str):
            raise ValueError(f"{path}: PromptConfig {name!r} has no spec.workflow")
        return cls(path, name, text, yaml, docs, target)

    @property
    def workflow(self) -> str:
        return str(self.target["spec"]["workflow"])

    def apply(self, version: int, snapshot: ActiveSnapshot | None) -> int | None:
        """Set ``spec.activeVersion`` (after ``spec.workflow`` when new) and ``spec.active``.

        ``snapshot`` None removes ``spec.active`` (it would describe another version). Returns
        the previous activeVersion (None: the inline spec was live).
        """
        spec = self.target["spec"]
        previous = spec.get("activeVersion")
        if "activeVersion" in spec:
            spec["activeVersion"] = version
        else:
            spec.insert(list(spec.keys()).index("workflow") + 1, "activeVersion", version)
        if snapshot is None:
            spec.pop("active", None)
        elif "active" in spec:
            spec["active"] = _snapshot_node(snapshot, literal=True)
        else:
            spec.insert(list(spec.keys()).index("activeVersion") + 1, "active", _snapshot_node(snapshot, literal=True))
        self.snapshot = snapshot
        return int(previous) if previous is not None else None

    def write(self) -> None:
        """Write the file; the written snapshot is read back and must equal the one applied.

        Literal blocks (``|-``) keep multi-line prompts readable; if one does not read back
        exactly (YAML cannot hold every string as a block), the text is written quoted instead.

        Raises:
            ValueError: the edit does not read back as written.
            OSError: the file cannot be written.
        """
        out = self._dump()
        if self.snapshot is not None and not self._reads_back(out):
            self.target["spec"]["active"] = _snapshot_node(self.snapshot, literal=False)
            out = self._dump()
            if not self._reads_back(out):
                raise ValueError(f"{self.path}: spec.active does not read back as written; file left unchanged")
        self.path.write_text(out, encoding="utf-8")

    def _dump(self) -> str:
        buffer = io.StringIO()
        self.yaml.dump_all(self.docs, buffer)
        return buffer.getvalue()

    def _reads_back(self, text: str) -> bool:
        import yaml

        assert self.snapshot is not None
        doc = next((d for d in yaml.safe_load_all(text) if _is_promptconfig(d, self.name)), None)
        active = ((doc or {}).get("spec") or {}).get("active")
        return bool(active == self.snapshot.to_wire())


def _is_promptconfig(doc: Any, name: str) -> bool:
    return (
        isinstance(doc, dict) and doc.get("kind") == "PromptConfig" and (doc.get("metadata") or {}).get("name") == name
    )


def _snapshot_node(snapshot: ActiveSnapshot, *, literal: bool) -> Any:
    """``spec.active`` as ruamel nodes: prompts sorted by name, multi-line texts as literal blocks."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import LiteralScalarString

    prompts = CommentedMap()
    for key in sorted(snapshot.prompts):
        text = snapshot.prompts[key]
        prompts[key] = LiteralScalarString(text) if literal and "\n" in text else text
    node = CommentedMap()
    node["checksum"] = snapshot.checksum
    node["prompts"] = prompts
    node["parameters"] = dict(snapshot.parameters)
    return node
