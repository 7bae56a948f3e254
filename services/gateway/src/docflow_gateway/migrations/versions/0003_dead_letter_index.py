"""The index of the dead-letter topic (issue 21: no request reads the whole topic).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("document_id", sa.Uuid()),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("error", sa.String(2000), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("dead_lettered_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ux_dead_letters_partition_offset", "dead_letters", ["partition", "offset"], unique=True
    )
    op.create_index("ix_dead_letters_tenant_seq", "dead_letters", ["tenant_id", "seq"])
    op.create_table(
        "dead_letter_positions",
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_positions")
    op.drop_table("dead_letters")
