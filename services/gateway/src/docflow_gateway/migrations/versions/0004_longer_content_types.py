"""Room for the Office formats' content types (73 characters; issue 22).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.alter_column(
            "content_type",
            existing_type=sa.String(64),
            type_=sa.String(128),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.alter_column(
            "content_type",
            existing_type=sa.String(128),
            type_=sa.String(64),
            existing_nullable=False,
        )
