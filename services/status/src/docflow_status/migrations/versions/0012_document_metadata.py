"""An upload's metadata and its filter terms (issue 24).

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Numbered 0012 in session 28 (0011 is another branch's); it revises whichever
# revision comes before it once the branches are merged.
revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("meta", sa.JSON(), nullable=True))
        table.add_column(sa.Column("meta_terms", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.drop_column("meta_terms")
        table.drop_column("meta")
