"""What each applied event said, for a document's timeline.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Events applied before this revision keep no details: they show in no timeline.
    with op.batch_alter_table("processed_events") as table:
        table.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        table.add_column(sa.Column("occurred_at", UTCDateTime()))
        table.add_column(sa.Column("stage", sa.String(16)))
        table.add_column(sa.Column("error", sa.JSON()))
        table.add_column(
            sa.Column("ends_stage", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_documents_created_at", "documents", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_documents_created_at", "documents")
    with op.batch_alter_table("processed_events") as table:
        for column in ("ends_stage", "error", "stage", "occurred_at", "attempt"):
            table.drop_column(column)
