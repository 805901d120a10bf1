"""Caches and case detail: the evaluation cache, the LLM response cache, per-case reasons and usage, stop requests.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(*, nullable: bool = False) -> sa.types.TypeEngine[object]:
    return sa.JSON(none_as_null=nullable).with_variant(postgresql.JSONB(none_as_null=nullable), "postgresql")


def upgrade() -> None:
    """Add the two cache tables, case ``reasons``/``usage`` and run ``stop_requested_at``."""
    with op.batch_alter_table("agentensor_runs") as batch:
        batch.add_column(sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("agentensor_case_results") as batch:
        batch.add_column(sa.Column("reasons", _json(nullable=True), nullable=True))
        batch.add_column(sa.Column("usage", _json(nullable=True), nullable=True))
    op.create_table(
        "agentensor_eval_cache",
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("config_checksum", sa.String(64), nullable=False),
        sa.Column("dataset_hash", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(255), nullable=False),
        sa.Column("result", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cache_key", name="pk_agentensor_eval_cache"),
    )
    op.create_table(
        "agentensor_llm_responses",
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("value", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cache_key", name="pk_agentensor_llm_responses"),
    )


def downgrade() -> None:
    """Drop the two tables and the three columns again."""
    op.drop_table("agentensor_llm_responses")
    op.drop_table("agentensor_eval_cache")
    with op.batch_alter_table("agentensor_case_results") as batch:
        batch.drop_column("usage")
        batch.drop_column("reasons")
    with op.batch_alter_table("agentensor_runs") as batch:
        batch.drop_column("stop_requested_at")
