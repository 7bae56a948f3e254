"""Webhook secret rotation (the previous secret, until when it still signs) and an
index for pruning old deliveries.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
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
    with op.batch_alter_table("webhook_endpoints") as table:
        table.add_column(sa.Column("previous_secret", sa.String(128), nullable=True))
        table.add_column(sa.Column("previous_secret_until", UTCDateTime(), nullable=True))
    op.create_index("ix_webhook_deliveries_last_attempt", "webhook_deliveries", ["last_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_last_attempt", "webhook_deliveries")
    with op.batch_alter_table("webhook_endpoints") as table:
        table.drop_column("previous_secret_until")
        table.drop_column("previous_secret")
