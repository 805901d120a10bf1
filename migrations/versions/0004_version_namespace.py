"""Tenancy: prompt versions are keyed by (namespace, workflow), not by the workflow alone.

Until now two namespaces that picked the same ``spec.workflow`` shared one sequence of version
numbers and could read each other's texts. Upgrading gives every existing version the
namespace(s) of the runs that used it, taken from ``agentensor_runs.namespace``:

1. the namespace of its ``source_run_id`` and of every run that checkpointed it;
2. else (an inline version, registered by a PromptConfig or as a run's starting config) every
   namespace that ran the workflow;
3. else ``default``.

A version used from several namespaces is copied into each with the same number, checksum and
text (each namespace keeps what it could already read; none gains anything), and each checkpoint
points at the copy of its run's namespace. A PromptConfig of a namespace that never ran the
workflow but pointed ``spec.activeVersion`` at another namespace's version shows
``Ready=False VersionNotFound`` after the upgrade: that read across namespaces is what this
revision ends.

Downgrading merges the namespaces of each workflow again: copies with the same checksum become
one row (the oldest keeps its number), and a number taken by another namespace's different
config is renumbered after the workflow's highest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONS = "agentensor_prompt_versions"
DEFAULT_NAMESPACE = "default"
_COPIED = "workflow, version, checksum, prompts, parameters, source, source_run_id, seed, dataset_hash, created_at"


def upgrade() -> None:
    """Add ``namespace`` to the versions, fill it from the runs, and key the uniques by it."""
    with op.batch_alter_table(VERSIONS) as batch:
        batch.drop_constraint("uq_agentensor_prompt_versions_workflow_version", type_="unique")
        batch.drop_constraint("uq_agentensor_prompt_versions_workflow_checksum", type_="unique")
        batch.add_column(sa.Column("namespace", sa.String(253), nullable=True))
    _assign_namespaces(op.get_bind())
    with op.batch_alter_table(VERSIONS) as batch:
        batch.alter_column("namespace", existing_type=sa.String(253), nullable=False)
        batch.create_unique_constraint(
            "uq_agentensor_prompt_versions_namespace_workflow_version", ["namespace", "workflow", "version"]
        )
        batch.create_unique_constraint(
            "uq_agentensor_prompt_versions_namespace_workflow_checksum", ["namespace", "workflow", "checksum"]
        )


def downgrade() -> None:
    """Merge each workflow's namespaces (by checksum), drop ``namespace`` and key the uniques by workflow."""
    with op.batch_alter_table(VERSIONS) as batch:
        batch.drop_constraint("uq_agentensor_prompt_versions_namespace_workflow_version", type_="unique")
        batch.drop_constraint("uq_agentensor_prompt_versions_namespace_workflow_checksum", type_="unique")
    _merge_namespaces(op.get_bind())
    with op.batch_alter_table(VERSIONS) as batch:
        batch.drop_column("namespace")
        batch.create_unique_constraint("uq_agentensor_prompt_versions_workflow_version", ["workflow", "version"])
        batch.create_unique_constraint("uq_agentensor_prompt_versions_workflow_checksum", ["workflow", "checksum"])


def _version_namespaces(conn: sa.Connection) -> dict[int, list[str]]:
    """``{version id: sorted namespaces}`` by the rules of the module docstring."""
    run_ns = dict(conn.execute(sa.text("SELECT id, namespace FROM agentensor_runs")).all())
    workflow_ns: dict[str, set[str]] = defaultdict(set)
    for workflow, namespace in conn.execute(sa.text("SELECT DISTINCT workflow, namespace FROM agentensor_runs")):
        workflow_ns[workflow].add(namespace)
    used: dict[int, set[str]] = defaultdict(set)
    for version_id, run_id in conn.execute(sa.text("SELECT version_id, run_id FROM agentensor_checkpoints")):
        if run_id in run_ns:  # checkpoints.run_id is a foreign key; kept defensive
            used[version_id].add(run_ns[run_id])
    out: dict[int, list[str]] = {}
    for vid, workflow, source_run_id in conn.execute(sa.text(f"SELECT id, workflow, source_run_id FROM {VERSIONS}")):
        namespaces = set(used[vid])
        if source_run_id in run_ns:
            namespaces.add(run_ns[source_run_id])
        out[vid] = sorted(namespaces or workflow_ns.get(workflow) or {DEFAULT_NAMESPACE})
    return out


def _assign_namespaces(conn: sa.Connection) -> None:
    """Give each version its first namespace, copy it into the others, repoint checkpoints to their run's copy."""
    copies: dict[tuple[int, str], int] = {}
    for vid, namespaces in _version_namespaces(conn).items():
        first, *others = namespaces
        conn.execute(sa.text(f"UPDATE {VERSIONS} SET namespace = :ns WHERE id = :id"), {"ns": first, "id": vid})
        copies[(vid, first)] = vid
        for namespace in others:
            copies[(vid, namespace)] = _copy_version(conn, vid, namespace)
    checkpoints = sa.text(
        "SELECT c.id, c.version_id, r.namespace FROM agentensor_checkpoints c JOIN agentensor_runs r ON r.id = c.run_id"
    )
    repoint = sa.text("UPDATE agentensor_checkpoints SET version_id = :v WHERE id = :id")
    for cid, vid, namespace in conn.execute(checkpoints).all():
        if copies[(vid, namespace)] != vid:
            conn.execute(repoint, {"v": copies[(vid, namespace)], "id": cid})


def _copy_version(conn: sa.Connection, vid: int, namespace: str) -> int:
    """Insert a copy of version row ``vid`` in ``namespace`` (same number, checksum, text); its new id."""
    conn.execute(
        sa.text(f"INSERT INTO {VERSIONS} (namespace, {_COPIED}) SELECT :ns, {_COPIED} FROM {VERSIONS} WHERE id = :id"),
        {"ns": namespace, "id": vid},
    )
    copy_id = sa.text(
        f"SELECT c.id FROM {VERSIONS} c JOIN {VERSIONS} o ON o.workflow = c.workflow AND o.version = c.version "
        "WHERE o.id = :id AND c.namespace = :ns"
    )
    return int(conn.execute(copy_id, {"ns": namespace, "id": vid}).scalar_one())


def _merge_namespaces(conn: sa.Connection) -> None:
    """One row per (workflow, checksum) and per (workflow, version) again; checkpoints follow their row."""
    rows = conn.execute(sa.text(f"SELECT id, workflow, version, checksum FROM {VERSIONS} ORDER BY id")).all()
    highest: dict[str, int] = defaultdict(int)
    for _, workflow, version, _ in rows:
        highest[workflow] = max(highest[workflow], version)
    kept: dict[tuple[str, str], int] = {}
    numbers: set[tuple[str, int]] = set()
    for vid, workflow, version, checksum in rows:
        twin = kept.get((workflow, checksum))
        if twin is not None:
            conn.execute(
                sa.text("UPDATE agentensor_checkpoints SET version_id = :t WHERE version_id = :id"),
                {"t": twin, "id": vid},
            )
            conn.execute(sa.text(f"DELETE FROM {VERSIONS} WHERE id = :id"), {"id": vid})
            continue
        if (workflow, version) in numbers:
            highest[workflow] += 1
            version = highest[workflow]
            conn.execute(sa.text(f"UPDATE {VERSIONS} SET version = :n WHERE id = :id"), {"n": version, "id": vid})
        kept[(workflow, checksum)] = vid
        numbers.add((workflow, version))
