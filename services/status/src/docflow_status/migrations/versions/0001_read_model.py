"""The read model: one row per document, and every event applied.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from docflow_shared.sql import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("content_type", sa.String(64)),
        sa.Column("size_bytes", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("pages", sa.Integer()),
        sa.Column("extract_done", sa.Integer(), nullable=False),
        sa.Column("extract_total", sa.Integer()),
        sa.Column("chunks_extracted", sa.Integer(), nullable=False),
        sa.Column("chunks_total", sa.Integer()),
        sa.Column("chunks_embedded", sa.Integer(), nullable=False),
        sa.Column("error", sa.JSON()),
        sa.Column("created_at", UTCDateTime()),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("completed_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime()),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("deleted_at", UTCDateTime()),
    )
    op.create_index("ix_documents_tenant_id", "documents", ["tenant_id"])
    op.create_index("ix_documents_status", "documents", ["status"])
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
    )
    op.create_index("ix_processed_events_document_id", "processed_events", ["document_id"])


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("documents")
