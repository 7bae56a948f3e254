"""Waiting for OCR: the first page a document's extractor asked the OCR stage for,
and where each of its OCR ranges waits on docflow.ocr.requested.v1.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("ocr_from", sa.Integer(), nullable=True))
    op.create_table(
        "ocr_range_records",
        sa.Column("document_id", sa.Uuid(), primary_key=True),
        sa.Column("range_index", sa.Integer(), primary_key=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ocr_range_records")
    with op.batch_alter_table("documents") as table:
        table.drop_column("ocr_from")
