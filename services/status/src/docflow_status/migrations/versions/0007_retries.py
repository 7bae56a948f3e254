"""Retries of a document's attempt after transient errors (DocumentRetrying).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("retries", sa.Integer(), server_default="0", nullable=False))
        table.add_column(sa.Column("retry_note", sa.String(2000), nullable=True))
        table.add_column(sa.Column("retrying_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.drop_column("retrying_since")
        table.drop_column("retry_note")
        table.drop_column("retries")
