"""Events of documents whose upload has not been read yet (domain/ownership.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unowned_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("parked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "tenant_id"),
    )
    op.create_index("ix_unowned_events_document_id", "unowned_events", ["document_id"])
    op.create_index("ix_unowned_events_parked_at", "unowned_events", ["parked_at"])


def downgrade() -> None:
    op.drop_index("ix_unowned_events_parked_at", table_name="unowned_events")
    op.drop_index("ix_unowned_events_document_id", table_name="unowned_events")
    op.drop_table("unowned_events")
