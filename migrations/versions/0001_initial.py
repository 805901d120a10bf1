"""Initial schema: runs, case results, prompt versions, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2025-11-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(*, nullable: bool = False) -> sa.types.TypeEngine[object]:
    """JSON, stored as JSONB on PostgreSQL (Python ``None`` is SQL NULL if ``nullable``)."""
    return sa.JSON(none_as_null=nullable).with_variant(postgresql.JSONB(none_as_null=nullable), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the four ``agentensor_*`` tables with their keys and indexes."""
    op.create_table(
        "agentensor_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("workflow", sa.String(253), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("status", _json(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("dataset_hash", sa.String(128), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agentensor_runs"),
    )
    op.create_index("ix_agentensor_runs_namespace_name", "agentensor_runs", ["namespace", "name"])

    op.create_table(
        "agentensor_case_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(255), nullable=False),
        sa.Column("case_id", sa.String(255), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("input", _json(), nullable=False),
        sa.Column("expected", _json(nullable=True), nullable=True),
        sa.Column("output", _json(nullable=True), nullable=True),
        sa.Column("scores", _json(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_seconds", sa.Double(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["agentensor_runs.id"],
            name="fk_agentensor_case_results_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agentensor_case_results"),
        sa.UniqueConstraint("run_id", "stage", "case_id", name="uq_agentensor_case_results_run_id_stage_case_id"),
    )

    op.create_table(
        "agentensor_prompt_versions",
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
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_agentensor_prompt_versions"),
        sa.UniqueConstraint("workflow", "version", name="uq_agentensor_prompt_versions_workflow_version"),
        sa.UniqueConstraint("workflow", "checksum", name="uq_agentensor_prompt_versions_workflow_checksum"),
    )

    op.create_table(
        "agentensor_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("scores", _json(), nullable=False),
        sa.Column("train_score", sa.Double(), nullable=True),
        sa.Column("accepted", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("dataset_hash", sa.String(128), nullable=True),
        sa.Column("extra", _json(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["agentensor_runs.id"],
            name="fk_agentensor_checkpoints_run",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["agentensor_prompt_versions.id"],
            name="fk_agentensor_checkpoints_version",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agentensor_checkpoints"),
        sa.UniqueConstraint("run_id", "epoch", name="uq_agentensor_checkpoints_run_id_epoch"),
    )
    op.create_index("ix_agentensor_checkpoints_version_id", "agentensor_checkpoints", ["version_id"])


def downgrade() -> None:
    """Drop the four tables (children first). All stored runs and versions are lost."""
    op.drop_index("ix_agentensor_checkpoints_version_id", table_name="agentensor_checkpoints")
    op.drop_table("agentensor_checkpoints")
    op.drop_table("agentensor_prompt_versions")
    op.drop_table("agentensor_case_results")
    op.drop_index("ix_agentensor_runs_namespace_name", table_name="agentensor_runs")
    op.drop_table("agentensor_runs")
