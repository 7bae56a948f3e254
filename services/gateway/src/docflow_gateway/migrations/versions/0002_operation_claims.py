"""What a document's operations claimed: the latest attempt a retry started, the
latest a cancel stopped, a delete begun (compare and set, issue 20).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
        table.add_column(
            sa.Column("stopped_attempt", sa.Integer(), server_default="0", nullable=False)
        )
        table.add_column(
            sa.Column("deleting", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.drop_column("deleting")
        table.drop_column("stopped_attempt")
        table.drop_column("attempt")
