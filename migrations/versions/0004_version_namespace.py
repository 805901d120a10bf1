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

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONS = "agentensor_prompt_versions"
PAIRS = "agentensor_version_namespaces_0004"
"""Scratch table of the upgrade: ``(version_id, namespace)`` pairs, dropped before it ends."""
_COPIED = "workflow, version, checksum, prompts, parameters, source, source_run_id, seed, dataset_hash, created_at"

# Plain SQL for both backends, online and offline (``alembic upgrade --sql``). Each statement
# either reads a table it does not write, or stays correct whether or not it sees its own rows.
_PAIR_STATEMENTS = (
    # 1. the namespaces of the run that registered it and of every run that checkpointed it
    f"""INSERT INTO {PAIRS} (version_id, namespace)
    SELECT v.id, r.namespace FROM {VERSIONS} v JOIN agentensor_runs r ON r.id = v.source_run_id
    UNION
    SELECT c.version_id, r.namespace FROM agentensor_checkpoints c JOIN agentensor_runs r ON r.id = c.run_id""",
    # 2. no run used it: every namespace that ran its workflow
    f"""INSERT INTO {PAIRS} (version_id, namespace)
    SELECT DISTINCT v.id, r.namespace FROM {VERSIONS} v JOIN agentensor_runs r ON r.workflow = v.workflow
    WHERE NOT EXISTS (SELECT 1 FROM agentensor_checkpoints c WHERE c.version_id = v.id)
    AND NOT EXISTS (SELECT 1 FROM agentensor_runs s WHERE s.id = v.source_run_id)""",
    # 3. else default
    f"""INSERT INTO {PAIRS} (version_id, namespace)
    SELECT v.id, 'default' FROM {VERSIONS} v WHERE NOT EXISTS (SELECT 1 FROM {PAIRS} p WHERE p.version_id = v.id)""",
)
_SPREAD_STATEMENTS = (
    # the row itself takes its first namespace, a copy is made for each other one
    f"UPDATE {VERSIONS} SET namespace = (SELECT MIN(p.namespace) FROM {PAIRS} p WHERE p.version_id = {VERSIONS}.id)",
    f"""INSERT INTO {VERSIONS} (namespace, {_COPIED})
    SELECT p.namespace, {", ".join(f"v.{c.strip()}" for c in _COPIED.split(","))}
    FROM {PAIRS} p JOIN {VERSIONS} v ON v.id = p.version_id WHERE p.namespace <> v.namespace""",
    # each checkpoint points at the copy in its run's namespace (the same workflow and number)
    f"""UPDATE agentensor_checkpoints SET version_id = (
    SELECT k.id FROM {VERSIONS} o JOIN {VERSIONS} k ON k.workflow = o.workflow AND k.version = o.version
    JOIN agentensor_runs r ON r.namespace = k.namespace
    WHERE o.id = agentensor_checkpoints.version_id AND r.id = agentensor_checkpoints.run_id)""",
)
_MERGE_STATEMENTS = (
    # copies with the same checksum: the oldest row stays, checkpoints follow it
    f"""UPDATE agentensor_checkpoints SET version_id = (
    SELECT MIN(k.id) FROM {VERSIONS} v JOIN {VERSIONS} k ON k.workflow = v.workflow AND k.checksum = v.checksum
    WHERE v.id = agentensor_checkpoints.version_id)""",
    f"""DELETE FROM {VERSIONS} WHERE EXISTS (SELECT 1 FROM {VERSIONS} k
    WHERE k.workflow = {VERSIONS}.workflow AND k.checksum = {VERSIONS}.checksum AND k.id < {VERSIONS}.id)""",
    # a number held by an older row of another config: after the workflow's highest, in id order
    # (always above the highest number at the moment it is assigned, so never a duplicate)
    f"""UPDATE {VERSIONS} SET version = (SELECT MAX(m.version) FROM {VERSIONS} m WHERE m.workflow = {VERSIONS}.workflow)
    + (SELECT COUNT(*) FROM {VERSIONS} d WHERE d.workflow = {VERSIONS}.workflow AND d.id <= {VERSIONS}.id
       AND EXISTS (SELECT 1 FROM {VERSIONS} e WHERE e.workflow = d.workflow AND e.version = d.version AND e.id < d.id))
    WHERE EXISTS (SELECT 1 FROM {VERSIONS} e
    WHERE e.workflow = {VERSIONS}.workflow AND e.version = {VERSIONS}.version AND e.id < {VERSIONS}.id)""",
)


_OLD_UNIQUES = {
    "uq_agentensor_prompt_versions_workflow_version": ("workflow", "version"),
    "uq_agentensor_prompt_versions_workflow_checksum": ("workflow", "checksum"),
}
_NEW_UNIQUES = {
    "uq_agentensor_prompt_versions_namespace_workflow_version": ("namespace", "workflow", "version"),
    "uq_agentensor_prompt_versions_namespace_workflow_checksum": ("namespace", "workflow", "checksum"),
}


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _versions_table(*, namespace: bool | None, uniques: dict[str, tuple[str, ...]]) -> sa.Table:
    """The versions table as it stands before a batch (``namespace``: None absent, else whether nullable).

    Given to ``batch_alter_table(copy_from=...)`` so that SQLite's move-and-copy works offline
    (``alembic upgrade --sql``) without reflecting the live table.
    """
    columns = [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow", sa.String(253), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("prompts", _json(), nullable=False),
        sa.Column("parameters", _json(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_run_id", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("dataset_hash", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]
    if namespace is not None:
        columns.append(sa.Column("namespace", sa.String(253), nullable=namespace))
    return sa.Table(
        VERSIONS,
        sa.MetaData(),
        *columns,
        sa.PrimaryKeyConstraint("id", name="pk_agentensor_prompt_versions"),
        *(sa.UniqueConstraint(*cols, name=name) for name, cols in uniques.items()),
    )


def upgrade() -> None:
    """Add ``namespace`` to the versions, fill it from the runs, and key the uniques by it."""
    with op.batch_alter_table(VERSIONS, copy_from=_versions_table(namespace=None, uniques=_OLD_UNIQUES)) as batch:
        for name in _OLD_UNIQUES:
            batch.drop_constraint(name, type_="unique")
        batch.add_column(sa.Column("namespace", sa.String(253), nullable=True))
    op.create_table(
        PAIRS, sa.Column("version_id", sa.Integer(), nullable=False), sa.Column("namespace", sa.String(253))
    )
    for statement in (*_PAIR_STATEMENTS, *_SPREAD_STATEMENTS):
        op.execute(statement)
    op.drop_table(PAIRS)
    with op.batch_alter_table(VERSIONS, copy_from=_versions_table(namespace=True, uniques={})) as batch:
        batch.alter_column("namespace", existing_type=sa.String(253), nullable=False)
        for name, cols in _NEW_UNIQUES.items():
            batch.create_unique_constraint(name, list(cols))


def downgrade() -> None:
    """Merge each workflow's namespaces (by checksum), drop ``namespace`` and key the uniques by workflow."""
    with op.batch_alter_table(VERSIONS, copy_from=_versions_table(namespace=False, uniques=_NEW_UNIQUES)) as batch:
        for name in _NEW_UNIQUES:
            batch.drop_constraint(name, type_="unique")
    for statement in _MERGE_STATEMENTS:
        op.execute(statement)
    with op.batch_alter_table(VERSIONS, copy_from=_versions_table(namespace=False, uniques={})) as batch:
        batch.drop_column("namespace")
        for name, cols in _OLD_UNIQUES.items():
            batch.create_unique_constraint(name, list(cols))
