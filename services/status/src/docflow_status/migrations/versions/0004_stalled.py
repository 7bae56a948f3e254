"""Stalled documents: when the watchdog last saw no progress, and whether nothing came since.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("stalled_since", UTCDateTime(), nullable=True))
        table.add_column(
            sa.Column("stalled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.drop_column("stalled")
        table.drop_column("stalled_since")
