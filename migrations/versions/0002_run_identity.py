"""Run identity: the spec checksum of a run and the lease of the process executing it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``spec_checksum``, ``lease_owner`` and ``lease_expires_at`` to ``agentensor_runs`` (all nullable)."""
    with op.batch_alter_table("agentensor_runs") as batch:
        batch.add_column(sa.Column("spec_checksum", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the three columns again."""
    with op.batch_alter_table("agentensor_runs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
        batch.drop_column("spec_checksum")
