"""Waiting, queue positions and estimates (issue 23): the stage a document waits
for, where its records wait on each stage's input topic, and the stages' queues
as last measured.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("waiting_for", sa.String(16), nullable=True))
    op.create_table(
        "queue_records",
        sa.Column("document_id", sa.Uuid(), primary_key=True),
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("first_offset", sa.BigInteger(), nullable=False),
        sa.Column("last_offset", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), server_default="1", nullable=False),
    )
    op.create_table(
        "partition_queues",
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("committed", sa.BigInteger(), nullable=False),
        sa.Column("end_offset", sa.BigInteger(), nullable=False),
        sa.Column("moved_at", UTCDateTime(), nullable=True),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "stage_rates",
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stage_rates")
    op.drop_table("partition_queues")
    op.drop_table("queue_records")
    with op.batch_alter_table("documents") as table:
        table.drop_column("waiting_for")
