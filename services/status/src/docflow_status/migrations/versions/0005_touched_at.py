"""When the read model last changed each document (the tenant-wide stream's cursor).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("touched_at", UTCDateTime(), nullable=True))
    op.create_index("ix_documents_tenant_touched", "documents", ["tenant_id", "touched_at"])


def downgrade() -> None:
    op.drop_index("ix_documents_tenant_touched", "documents")
    with op.batch_alter_table("documents") as table:
        table.drop_column("touched_at")
